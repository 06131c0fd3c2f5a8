import { Webhook, WebhookVerificationError } from 'svix';
import {
  InvalidSignatureError,
  MalformedJsonError,
  MissingEventTypeError,
  MissingSignatureHeadersError,
  PayloadTooLargeError,
  TimestampOutOfToleranceError,
} from './ingress-errors';
import type { SigningSecrets } from './signing-secrets';
import { envelopeOwner } from './envelope-owner';

/** A request as the HTTP layer hands it over: header names in any case, the body possibly base64. */
export interface InboundRequest {
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string | undefined;
  readonly isBase64Encoded: boolean;
}

/** A delivery whose signature, timestamp and envelope have been checked. */
export interface VerifiedDelivery {
  readonly svixId: string;
  readonly svixTimestamp: string;
  readonly eventType: string;
  /** The body exactly as received, decoded from UTF-8 (it parsed as JSON, so it is valid text). */
  readonly body: string;
  readonly bodyBytes: number;
  /** Which secret matched: `current`, or `previous` while a rotation is under way. */
  readonly matchedSecret: 'current' | 'previous';
  /** The user the envelope names (`envelopeOwner`): a claim-checked body is labelled with it. */
  readonly userId?: string;
}

/**
 * The largest body accepted, in bytes. API Gateway hands Lambda the body base64-encoded when it is
 * binary, and Lambda's synchronous payload limit is 6 MB, so 4 MiB (5.33 MB in base64) is the most
 * that always reaches the handler intact; the largest Vital batches (tens of thousands of samples)
 * stay well below it.
 */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

function lowerCaseHeaders(headers: InboundRequest['headers']): Record<string, string> {
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) lowered[name.toLowerCase()] = value;
  return lowered;
}

function header(headers: Record<string, string>, name: string): string | undefined {
  return headers[`svix-${name}`] ?? headers[`webhook-${name}`];
}

function toIngressError(error: unknown): Error {
  if (!(error instanceof WebhookVerificationError)) return error as Error;
  const message = error.message;
  if (message === 'Missing required headers') return new MissingSignatureHeadersError();
  if (message.startsWith('Message timestamp too')) return new TimestampOutOfToleranceError();
  return new InvalidSignatureError();
}

/** Verifies `body` under one secret; `false` only when no signature matched (other failures throw). */
function verifiesUnder(secret: string, body: Buffer, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch (error) {
    const mapped = toIngressError(error);
    if (mapped instanceof InvalidSignatureError) return false;
    throw mapped;
  }
}

/**
 * Checks a webhook request end to end: size, signature headers, signature (current secret, then
 * previous ones), timestamp tolerance (±5 minutes, enforced by `svix`), and the minimal envelope
 * (a JSON object with a string `event_type`). Throws one `IngressError` per failure mode.
 */
export function verifyDelivery(
  request: InboundRequest,
  secrets: SigningSecrets,
  maxBodyBytes: number = DEFAULT_MAX_BODY_BYTES,
): VerifiedDelivery {
  const raw = Buffer.from(request.body ?? '', request.isBase64Encoded ? 'base64' : 'utf8');
  if (raw.byteLength > maxBodyBytes) throw new PayloadTooLargeError();

  const headers = lowerCaseHeaders(request.headers);
  const svixId = header(headers, 'id');
  const svixTimestamp = header(headers, 'timestamp');
  if (!svixId || !svixTimestamp || !header(headers, 'signature')) throw new MissingSignatureHeadersError();

  let matchedSecret: VerifiedDelivery['matchedSecret'];
  if (verifiesUnder(secrets.current, raw, headers)) matchedSecret = 'current';
  else if (secrets.previous.some((secret) => verifiesUnder(secret, raw, headers))) matchedSecret = 'previous';
  else throw new InvalidSignatureError();

  const body = raw.toString('utf8');
  let envelope: unknown;
  try {
    envelope = JSON.parse(body);
  } catch {
    throw new MalformedJsonError();
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw new MalformedJsonError();
  const eventType = (envelope as { event_type?: unknown }).event_type;
  if (typeof eventType !== 'string' || eventType.length === 0) throw new MissingEventTypeError();

  const userId = envelopeOwner(envelope);
  return { svixId, svixTimestamp, eventType, body, bodyBytes: raw.byteLength, matchedSecret, ...(userId ? { userId } : {}) };
}
