/**
 * Whose data a webhook body is: the user its envelope is addressed to (`user_id` at the top), the one
 * rule by which the verifier labels a claim-checked body, the worker labels a body it keeps aside
 * (and checks the erasure of a user whose event it does not interpret), and `vital-pipeline erase`
 * finds the bodies of one user in the raw-body bucket. The label is object metadata
 * (`ownerMetadata`), so the erasure reads a body only when it was written without one.
 */

/** The S3 user-metadata name (`x-amz-meta-user-id`) under which a kept or claim-checked body names its user. */
const OWNER_METADATA = 'user-id';

/**
 * The object metadata naming `userId` as a body's owner (none for no user). URI-encoded: the id
 * comes from a signed body and may hold any character, and S3 metadata travels as HTTP headers.
 */
export function ownerMetadata(userId: string | undefined): Record<string, string> {
  return userId === undefined ? {} : { [OWNER_METADATA]: encodeURIComponent(userId) };
}

/** The owner an object's metadata names; undefined when it names none (written before the label existed). */
export function ownerOfMetadata(metadata: Readonly<Record<string, string>> | undefined): string | undefined {
  const encoded = metadata?.[OWNER_METADATA];
  if (encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/** The envelope's `user_id`, when the envelope is a JSON object with a non-empty string there. */
export function envelopeOwner(envelope: unknown): string | undefined {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) return undefined;
  const userId = (envelope as { user_id?: unknown }).user_id;
  return typeof userId === 'string' && userId.length > 0 ? userId : undefined;
}

/** The owner of a body's text; undefined when it is not JSON or names no user. */
export function bodyOwner(body: string): string | undefined {
  try {
    return envelopeOwner(JSON.parse(body));
  } catch {
    return undefined;
  }
}
