import { NamedError } from './named-error';
/**
 * One error class per way an inbound webhook can be refused. Each carries the HTTP status the
 * verifier answers and a short machine-readable reason that is safe to return and to use as a
 * metric dimension: it never contains a payload, a secret or a computed signature.
 */
export abstract class IngressError extends NamedError {
  abstract readonly statusCode: number;
  abstract readonly reason: string;
}

/** `svix-id`, `svix-timestamp` or `svix-signature` (or their `webhook-*` twins) is absent. */
export class MissingSignatureHeadersError extends IngressError {
  readonly statusCode = 401;
  readonly reason = 'missing_signature_headers';
}

/** No signature in the header matches the body under any configured secret. */
export class InvalidSignatureError extends IngressError {
  readonly statusCode = 401;
  readonly reason = 'invalid_signature';
}

/** The signed timestamp is more than the tolerance (5 minutes) in the past or the future. */
export class TimestampOutOfToleranceError extends IngressError {
  readonly statusCode = 401;
  readonly reason = 'timestamp_out_of_tolerance';
}

/** The body exceeds the documented maximum the pipeline accepts. */
export class PayloadTooLargeError extends IngressError {
  readonly statusCode = 413;
  readonly reason = 'payload_too_large';
}

/** A correctly signed body that is not a JSON object. */
export class MalformedJsonError extends IngressError {
  readonly statusCode = 400;
  readonly reason = 'malformed_json';
}

/** A correctly signed JSON object without a string `event_type`. */
export class MissingEventTypeError extends IngressError {
  readonly statusCode = 400;
  readonly reason = 'missing_event_type';
}

/** The event could not be made durable (queue or claim-check store refused it): the sender must retry. */
export class QueueUnavailableError extends IngressError {
  readonly statusCode = 503;
  readonly reason = 'queue_unavailable';
}

/**
 * The signing secret's store holds no usable value (the placeholder the stack creates, before the
 * user has stored the endpoint's secret). 503, not 401 or 500: Svix retries for about 27 hours, so
 * nothing sent before the secret is set is lost.
 */
export class SigningSecretNotSetError extends IngressError {
  readonly statusCode = 503;
  readonly reason = 'signing_secret_not_set';
  constructor(readonly secretId: string) {
    super(`The signing secret ${secretId} holds no whsec_ value: store the endpoint's secret there (vital-pipeline secrets set, or the console); deliveries are answered 503 and Svix retries them meanwhile`);
  }
}
