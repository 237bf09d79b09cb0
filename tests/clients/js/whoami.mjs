// keyward e2e client: AWS SDK for JavaScript v3.
// Credentials come from the default provider chain, i.e. exactly what the
// user's ~/.aws/config gives for AWS_PROFILE (typically a credential_process
// line). Calls STS GetCallerIdentity and prints {"arn": "...", "sdk": "js-v3"}.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

// Node 20 is still supported by this pinned SDK; silence its advance notice
// about a future node>=22 requirement so stderr only carries real errors.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// Credentials must come from the config file. Never fall through to the EC2
// instance metadata service (a non-loopback address) on failure.
process.env.AWS_EC2_METADATA_DISABLED ??= "true";

const region =
  process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1";
const endpoint = process.env.AWS_ENDPOINT_URL || undefined;

try {
  const client = new STSClient({ region, ...(endpoint ? { endpoint } : {}) });
  const out = await client.send(new GetCallerIdentityCommand({}));
  if (!out.Arn) throw new Error("GetCallerIdentity returned no Arn");
  process.stdout.write(JSON.stringify({ arn: out.Arn, sdk: "js-v3" }) + "\n");
} catch (err) {
  process.stderr.write(`keyward-js-whoami: ${err && err.name ? err.name + ": " : ""}${err && err.message ? err.message : err}\n`);
  process.exit(1);
}
