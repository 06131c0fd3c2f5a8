import { vitalApiBaseUrl, type VitalEnvironment, type VitalRegion } from '../../functions/adapters/vital-api-client';

/**
 * `register`: the webhook endpoint on Vital's side, through the Junction Management API (Scale plan):
 * `/v1/org/{org}/team/{team}/{environment}/webhook`, authorised by `X-Management-Key`. Without a
 * management key, endpoints are registered in the dashboard, and a team API key can fetch a link to
 * the dashboard's embedded webhook portal (`GET /v2/team/svix/url`, undocumented).
 */

export const MANAGEMENT_API_BASE_URL = 'https://api.management.junction.com';

/** The Management API answered with an error, or could not be reached. */
export class ManagementApiError extends Error {}

/** The portal link could not be fetched with the team key. */
export class PortalLinkError extends Error {}

export interface ManagementScope {
  readonly baseUrl: string;
  readonly managementKey: string;
  readonly orgId: string;
  readonly teamId: string;
  readonly environment: VitalEnvironment;
}

/** A webhook endpoint as the Management API describes it (fields beyond these are kept as sent). */
export interface WebhookEndpoint {
  readonly id: string;
  readonly url: string;
  readonly description?: string;
  readonly filter_types?: readonly string[] | null;
  readonly disabled?: boolean;
  readonly [field: string]: unknown;
}

async function call<T>(scope: ManagementScope, method: string, path: string, body?: unknown): Promise<T> {
  const base = `${scope.baseUrl.replace(/\/+$/, '')}/v1/org/${encodeURIComponent(scope.orgId)}/team/${encodeURIComponent(scope.teamId)}/${scope.environment}/webhook`;
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: {
        'x-management-key': scope.managementKey,
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new ManagementApiError(`Could not reach the Management API at ${scope.baseUrl}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { detail?: unknown };
      if (parsed.detail !== undefined) detail = typeof parsed.detail === 'string' ? parsed.detail : JSON.stringify(parsed.detail);
    } catch {
      // Not JSON: the start of the text says enough.
    }
    const hint = response.status === 401 || response.status === 403 ? ' (check --management-key, --org and --team)' : '';
    throw new ManagementApiError(`Management API ${method} ${path || '/'} answered ${response.status}: ${detail}${hint}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Every webhook endpoint of the team's environment, following `next_cursor`. */
export async function listEndpoints(scope: ManagementScope): Promise<WebhookEndpoint[]> {
  const endpoints: WebhookEndpoint[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: '100', ...(cursor ? { next_cursor: cursor } : {}) });
    const page = await call<{ data?: WebhookEndpoint[]; next_cursor?: string | null } | WebhookEndpoint[]>(scope, 'GET', `?${query}`);
    if (Array.isArray(page)) {
      endpoints.push(...page);
      break;
    }
    endpoints.push(...(page.data ?? []));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return endpoints;
}

/** Creates an endpoint for `url` and returns it with its signing secret. */
export async function createEndpoint(
  scope: ManagementScope,
  input: { url: string; description?: string; filterTypes?: readonly string[] },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const endpoint = await call<WebhookEndpoint>(scope, 'POST', '', {
    url: input.url,
    ...(input.description ? { description: input.description } : {}),
    ...(input.filterTypes && input.filterTypes.length > 0 ? { filter_types: input.filterTypes } : {}),
  });
  const { key } = await call<{ key: string }>(scope, 'GET', `/${encodeURIComponent(endpoint.id)}/secret`);
  return { endpoint, secret: key };
}

/**
 * Rotates an endpoint's signing secret and returns the new one. Svix signs with both the old and the
 * new secret for 24 hours, so the pipeline should accept both meanwhile.
 */
export async function rotateSecret(scope: ManagementScope, webhookId: string): Promise<string> {
  await call<unknown>(scope, 'POST', `/${encodeURIComponent(webhookId)}/secret/rotate`, {});
  const { key } = await call<{ key: string }>(scope, 'GET', `/${encodeURIComponent(webhookId)}/secret`);
  return key;
}

/** A link to the dashboard's webhook portal, through the team API key. */
export async function portalLink(options: {
  apiKey: string;
  environment: VitalEnvironment;
  region: VitalRegion;
  baseUrlOverride?: string;
}): Promise<string> {
  const base = vitalApiBaseUrl({
    environment: options.environment,
    region: options.region,
    ...(options.baseUrlOverride ? { override: options.baseUrlOverride } : {}),
  });
  let response: Response;
  try {
    response = await fetch(`${base}/v2/team/svix/url`, { headers: { 'x-vital-api-key': options.apiKey, accept: 'application/json' } });
  } catch (error) {
    throw new PortalLinkError(`Could not reach ${base}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}`);
  }
  if (!response.ok) throw new PortalLinkError(`${base}/v2/team/svix/url answered ${response.status}`);
  const body = (await response.json()) as unknown;
  const url = typeof body === 'string' ? body : (body as { url?: unknown } | null)?.url;
  if (typeof url !== 'string') throw new PortalLinkError(`${base}/v2/team/svix/url gave no link`);
  return url;
}

/** What to tell someone without a management key. */
export const DASHBOARD_ROUTE = [
  'Without a Management API key (Scale plan), register the endpoint in the Junction dashboard: open the',
  "team's webhooks page (an embedded Svix portal), add an endpoint with the public webhook URL and the",
  "event types to send, then copy its signing secret (whsec_...) into the pipeline's signing secret.",
].join('\n');
