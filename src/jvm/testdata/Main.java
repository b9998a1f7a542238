// Calls every method of Target; the same output with and without wrapping, apart from
// the lines the natives (natives.c) print. Argument 0: the natives' library, if any.
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;

public class Main {
    public static void main(String[] args) throws Exception {
        if (args.length > 0) {
            System.load(args[0]);
        }
        Target t = new Target("t1");
        System.out.println("add " + t.add(1, 2L, 3.5));
        System.out.println("mul " + t.mul(1L << 40, 3));
        System.out.println("half " + t.half(5.0, 0.25f));
        System.out.println("greet " + t.greet("you", new int[] {1, 2, 3}, (byte) -7, 'x', (short) 300, true));
        System.out.println("twice " + Arrays.toString(t.twice(new int[] {4, 5})));
        byte[] buf = new byte[4];
        t.touch(buf, 2, 1);
        System.out.println("touch " + Arrays.toString(buf));
        try {
            t.boom(9);
            System.out.println("no exception");
        } catch (IllegalStateException e) {
            System.out.println("caught " + e.getMessage());
        }
        try {
            t.touch(buf, 0, -1);
            System.out.println("no exception");
        } catch (IOException e) {
            System.out.println("caught " + e.getMessage());
        }
        System.out.println("scale " + t.scale(2.0f));
        System.out.println("odd " + t.odd(3) + " " + t.odd(4));
        Method m = Target.class.getDeclaredMethod("touch", byte[].class, int.class, int.class);
        System.out.println("touch throws " + Arrays.toString(m.getExceptionTypes())
                + " " + Modifier.toString(m.getModifiers()));
        Method h = Target.class.getDeclaredMethod("half", double.class, float.class);
        System.out.println("half is " + Modifier.toString(h.getModifiers()) + " " + h.getReturnType());
    }
}
