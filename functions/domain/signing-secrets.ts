import { NamedError } from './named-error';
/**
 * The webhook signing secrets in force. During a rotation Svix signs every message with both the old
 * and the new secret for 24 hours, so the verifier accepts either; `current` is tried first.
 */
export interface SigningSecrets {
  readonly current: string;
  readonly previous: readonly string[];
}

/** Raised when the stored secret value has neither of the documented shapes. */
export class InvalidSigningSecretValueError extends NamedError {
  constructor() {
    super(
      'The signing secret must be a "whsec_..." string or JSON {"current": "whsec_...", "previous": ["whsec_..."]}',
    );
  }
}

const secretPattern = /^whsec_[A-Za-z0-9+/=]+$/;

function assertSecret(value: unknown): string {
  if (typeof value !== 'string' || !secretPattern.test(value.trim())) throw new InvalidSigningSecretValueError();
  return value.trim();
}

/**
 * Parses the stored secret value: either the bare `whsec_...` secret, or JSON
 * `{"current": "whsec_...", "previous": "whsec_..." | ["whsec_...", ...]}` while a rotation is under way.
 */
export function parseSigningSecrets(value: string): SigningSecrets {
  const trimmed = value.trim();
  if (!trimmed.startsWith('{')) return { current: assertSecret(trimmed), previous: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new InvalidSigningSecretValueError();
  }
  const { current, previous } = (parsed ?? {}) as { current?: unknown; previous?: unknown };
  const previousList = previous === undefined || previous === null ? [] : Array.isArray(previous) ? previous : [previous];
  return { current: assertSecret(current), previous: previousList.map(assertSecret) };
}
