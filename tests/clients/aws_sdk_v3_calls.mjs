// AWS API calls from the AWS SDK for JavaScript v3 against a moto_server on 127.0.0.1
// (argv[2] = port, argv[3] = planted marker). One JSON line per call: the name tapline
// should give it and what the SDK read from the response ($metadata.requestId, message
// ids), for the test to compare with what tapline reconstructed from the wire.
import { DynamoDBClient, CreateTableCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SQSClient, CreateQueueCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { SNSClient, CreateTopicCommand, PublishCommand } from "@aws-sdk/client-sns";
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { KinesisClient, CreateStreamCommand, PutRecordCommand } from "@aws-sdk/client-kinesis";
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SFNClient, CreateStateMachineCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { SecretsManagerClient, CreateSecretCommand, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";
import { SSMClient, PutParameterCommand, GetParameterCommand } from "@aws-sdk/client-ssm";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const [port, planted] = process.argv.slice(2);
const cfg = {
  endpoint: `http://127.0.0.1:${port}`,
  region: "us-east-1",
  credentials: { accessKeyId: "AKIAPLANTEDNODE", secretAccessKey: `${planted}-node-secret`,
                 sessionToken: `${planted}-node-session` },
};
const out = (name, r, messageIds = [], extra = {}) =>
  console.log(JSON.stringify({ name, request_id: r?.$metadata?.requestId ?? null,
                               host_id: r?.$metadata?.extendedRequestId ?? null,
                               message_ids: messageIds, ...extra }));

const ddb = new DynamoDBClient(cfg);
await ddb.send(new CreateTableCommand({ TableName: "node-orders",
  KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST" }));
out("DynamoDB.PutItem", await ddb.send(new PutItemCommand({ TableName: "node-orders", Item: { id: { S: "1" } } })),
    [], { table: "node-orders" });

const sqs = new SQSClient(cfg);
const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "node-jobs" }));
let r = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "hello" }));
out("SQS.SendMessage", r, [r.MessageId], { queue_url: QueueUrl });

const sns = new SNSClient(cfg);
const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "node-alerts" }));
r = await sns.send(new PublishCommand({ TopicArn, Message: "hi" }));
out("SNS.Publish", r, [r.MessageId], { topic_arn: TopicArn });

const s3 = new S3Client({ ...cfg, forcePathStyle: true });
await s3.send(new CreateBucketCommand({ Bucket: "node-photos" }));
out("S3.PutObject", await s3.send(new PutObjectCommand({ Bucket: "node-photos", Key: "k.txt", Body: "x" })),
    [], { bucket: "node-photos", key: "k.txt" });
r = await s3.send(new GetObjectCommand({ Bucket: "node-photos", Key: "k.txt" }));
await r.Body.transformToString();
out("S3.GetObject", r, [], { bucket: "node-photos", key: "k.txt" });

// Kinesis defaults to HTTP/2, which moto_server does not speak over cleartext.
const kin = new KinesisClient({ ...cfg, requestHandler: new NodeHttpHandler() });
await kin.send(new CreateStreamCommand({ StreamName: "node-clicks", ShardCount: 1 }));
r = await kin.send(new PutRecordCommand({ StreamName: "node-clicks", Data: Buffer.from("d"), PartitionKey: "p" }));
out("Kinesis.PutRecord", r, [r.SequenceNumber], { stream: "node-clicks" });

const lam = new LambdaClient(cfg);
try {
  await lam.send(new InvokeCommand({ FunctionName: "node-worker", Payload: Buffer.from("{}") }));
} catch (e) {
  out("Lambda.Invoke", e, [], { function: "node-worker" });
}

const ev = new EventBridgeClient(cfg);
r = await ev.send(new PutEventsCommand({ Entries: [{ Source: "app", DetailType: "t", Detail: "{}" }] }));
out("EventBridge.PutEvents", r, r.Entries.map((e) => e.EventId), { bus: "default" });

const sfn = new SFNClient(cfg);
const sm = await sfn.send(new CreateStateMachineCommand({ name: "node-flow",
  roleArn: "arn:aws:iam::123456789012:role/sfn",
  definition: JSON.stringify({ StartAt: "A", States: { A: { Type: "Pass", End: true } } }) }));
out("SFN.StartExecution", await sfn.send(new StartExecutionCommand({ stateMachineArn: sm.stateMachineArn, input: "{}" })),
    [], { state_machine: sm.stateMachineArn });

out("STS.GetCallerIdentity", await new STSClient(cfg).send(new GetCallerIdentityCommand({})));

const sec = new SecretsManagerClient(cfg);
await sec.send(new CreateSecretCommand({ Name: "node/db", SecretString: `${planted}-node-secret-value` }));
r = await sec.send(new GetSecretValueCommand({ SecretId: "node/db" }));
if (!r.SecretString.includes(planted)) throw new Error("secret not returned");
out("SecretsManager.GetSecretValue", r, [], { secret: "node/db" });

const ssm = new SSMClient(cfg);
await ssm.send(new PutParameterCommand({ Name: "/node/db-password", Value: `${planted}-node-param`, Type: "SecureString" }));
r = await ssm.send(new GetParameterCommand({ Name: "/node/db-password", WithDecryption: true }));
if (!r.Parameter.Value.includes(planted)) throw new Error("parameter not returned");
out("SSM.GetParameter", r, [], { parameter: "/node/db-password" });
