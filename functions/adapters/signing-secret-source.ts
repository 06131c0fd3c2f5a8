import { RefreshingValue, type RefreshingValueOptions } from './refreshing-value';
import { SigningSecretNotSetError } from '../domain/ingress-errors';
import { InvalidSigningSecretValueError, parseSigningSecrets, type SigningSecrets } from '../domain/signing-secrets';

/** Supplies the signing secrets in force, cached per container. */
export interface SigningSecretSource {
  get(): Promise<SigningSecrets>;
  /**
   * Called after a signature failed under every cached secret: fetches again if the cache may be
   * stale (a rotation since the last fetch), and returns the fresh secrets, or `undefined` when a
   * refetch is not allowed yet. The rate limit keeps a flood of forged requests from turning into a
   * flood of secret reads.
   */
  refreshAfterFailure(): Promise<SigningSecrets | undefined>;
}

/** Fixed secrets: the local pipeline and tests. */
export class StaticSigningSecrets implements SigningSecretSource {
  private readonly secrets: SigningSecrets;
  constructor(value: string) {
    this.secrets = parseSigningSecrets(value);
  }
  async get(): Promise<SigningSecrets> {
    return this.secrets;
  }
  async refreshAfterFailure(): Promise<undefined> {
    return undefined;
  }
}

/** How the raw secret is read and cached (`RefreshingValue`): a signature no cached secret verifies asks for a fresh read. */
export interface CachedSigningSecretsOptions extends RefreshingValueOptions<string> {
  /** Names the secret in the error when it holds no usable value (never the value itself). */
  readonly secretId?: string;
}

/** Secrets read from a store (Secrets Manager in AWS), cached, refreshed on a timer and after failures. */
export class CachedSigningSecrets implements SigningSecretSource {
  private readonly secrets: RefreshingValue<SigningSecrets>;

  constructor(options: CachedSigningSecretsOptions) {
    this.secrets = new RefreshingValue({
      ...options,
      // A value that is not a signing secret (the placeholder) is `SigningSecretNotSetError`.
      fetch: async (forceFetch) => {
        try {
          return parseSigningSecrets(await options.fetch(forceFetch));
        } catch (error) {
          if (error instanceof InvalidSigningSecretValueError) throw new SigningSecretNotSetError(options.secretId ?? 'signing secret');
          throw error;
        }
      },
    });
  }

  get(): Promise<SigningSecrets> {
    return this.secrets.get();
  }

  refreshAfterFailure(): Promise<SigningSecrets | undefined> {
    return this.secrets.refresh();
  }
}
