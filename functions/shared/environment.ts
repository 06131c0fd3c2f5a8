import { NamedError } from '../domain/named-error';
/** Raised at cold start when the deployment left out a setting the handler cannot run without. */
export class MissingConfigurationError extends NamedError {}

/** Reads a required environment variable. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new MissingConfigurationError(`Environment variable ${name} is not set`);
  return value;
}
