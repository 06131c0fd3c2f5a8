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

export interface CachedSigningSecretsOptions {
  /** Reads the raw secret value; `forceFetch` bypasses any cache below. */
  readonly fetch: (forceFetch: boolean) => Promise<string>;
  /** How long a value is trusted before it is read again. */
  readonly maxAgeMs: number;
  /** The least time between two refetches caused by signature failures. */
  readonly minRefreshIntervalMs: number;
  /** Names the secret in the error when it holds no usable value (never the value itself). */
  readonly secretId?: string;
  readonly now?: () => number;
}

/** Secrets read from a store (Secrets Manager in AWS), cached, refreshed on a timer and after failures. */
export class CachedSigningSecrets implements SigningSecretSource {
  private cached?: { secrets: SigningSecrets; fetchedAt: number };
  private readonly now: () => number;

  constructor(private readonly options: CachedSigningSecretsOptions) {
    this.now = options.now ?? Date.now;
  }

  async get(): Promise<SigningSecrets> {
    if (this.cached && this.now() - this.cached.fetchedAt < this.options.maxAgeMs) return this.cached.secrets;
    return this.load(false);
  }

  async refreshAfterFailure(): Promise<SigningSecrets | undefined> {
    if (this.cached && this.now() - this.cached.fetchedAt < this.options.minRefreshIntervalMs) return undefined;
    return this.load(true);
  }

  /** Reads and parses the secret; a value that is not a signing secret (the placeholder) is `SigningSecretNotSetError`. */
  private async load(forceFetch: boolean): Promise<SigningSecrets> {
    let secrets: SigningSecrets;
    try {
      secrets = parseSigningSecrets(await this.options.fetch(forceFetch));
    } catch (error) {
      if (error instanceof InvalidSigningSecretValueError) throw new SigningSecretNotSetError(this.options.secretId ?? 'signing secret');
      throw error;
    }
    this.cached = { secrets, fetchedAt: this.now() };
    return secrets;
  }
}
