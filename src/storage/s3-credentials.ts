/**
 * Where the S3 request path gets its keys. Explicit keys, or the standard AWS chain (env,
 * shared files and profiles, SSO, web identity, ECS and IMDS), which stays the AWS SDK's:
 * it is loaded only when it is needed, so a push with keys in the config or in the
 * environment never loads the SDK.
 */
import type { S3Credentials } from './s3-client.js';

export type CredentialSource = () => Promise<S3Credentials>;

export interface CredentialOptions {
  credentials: S3Credentials | undefined;
  profile: string | undefined;
  region: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * The chain's first link without the SDK: with no profile asked for (option or
 * AWS_PROFILE), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY win, as in the SDK's chain.
 */
function fromEnv(env: NodeJS.ProcessEnv, profile: string | undefined): S3Credentials | undefined {
  if (profile !== undefined || env.AWS_PROFILE) return undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  return sessionToken
    ? { accessKeyId, secretAccessKey, sessionToken }
    : { accessKeyId, secretAccessKey };
}

export function credentialSource(o: CredentialOptions): CredentialSource {
  const fixed = o.credentials ?? fromEnv(o.env ?? process.env, o.profile);
  if (fixed) {
    const p = Promise.resolve(fixed);
    return () => p;
  }
  let provider: Promise<() => Promise<S3Credentials>> | undefined;
  return async () => {
    provider ??= (async () => {
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      // The SDK client resolves (and caches, and refreshes) the default chain for us.
      const { S3Client } = await import('@aws-sdk/client-s3');
      const client = new S3Client({ region: o.region, profile: o.profile });
      return client.config.credentials as () => Promise<S3Credentials>;
    })();
    provider.catch(() => (provider = undefined));
    const c = await (await provider)();
    return c.sessionToken
      ? {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
        }
      : { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  };
}
