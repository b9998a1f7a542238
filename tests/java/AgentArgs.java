// Prints how many of the JVM's own arguments load libtapline as an agent
// (-agentpath:...libtapline...): how tests/test_java_tls.py sees what tapline run, the
// exec hooks and wrapper.sh put into a java command line.
import java.lang.management.ManagementFactory;

public class AgentArgs {
    public static void main(String[] args) {
        long n = ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
            .filter(a -> a.startsWith("-agentpath:") && a.contains("libtapline"))
            .count();
        System.out.println("tapline agents " + n);
    }
}
