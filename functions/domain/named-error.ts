/**
 * An error whose `name` is its class's name (`MalformedEnvelopeError`, not `Error`), so that logs,
 * metrics, failure notes and the local console say which failure it was. Bundles keep class names
 * for this (`keepNames` in lib/constructs/pipeline-function.ts): minified, they would be one letter.
 */
export class NamedError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
