import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { invokeLocally, LOCAL_ACCOUNT_ID, type LocalFunction } from './lambda-invocation';

/**
 * A local stand-in for an API Gateway HTTP API with Lambda proxy integrations (payload format 2.0):
 * it turns each Node request into the `APIGatewayProxyEventV2` API Gateway would build (lower-cased
 * headers, repeated headers joined by commas, cookies apart, the raw body, base64 when it is not
 * text), invokes the route's function, and maps its result back as API Gateway does.
 */

export type HttpFunction = LocalFunction<APIGatewayProxyEventV2, APIGatewayProxyResultV2>;

export interface HttpRoute {
  readonly method: string;
  readonly path: string;
  readonly function: HttpFunction;
}

/** What the local pipeline prints about each request. */
export interface HandledRequest {
  readonly routeKey: string;
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The response body (the verifier's short JSON reason), never the request body. */
  readonly responseBody: string;
  /** The request body, for a log line to pick a single safe field from after a 2xx. */
  readonly requestBody: Buffer;
  readonly durationMs: number;
}

export interface RunningHttpApi {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** API Gateway's payload limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;
const API_ID = 'local';

const textMediaType = /^(text\/.*|application\/(json|javascript|xml|[\w.+-]*\+(json|xml)))$/;

/** API Gateway passes text media types as a string and base64-encodes everything else. */
function isText(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  return mediaType !== undefined && textMediaType.test(mediaType);
}

/** `12/Mar/2020:19:03:58 +0000`, API Gateway's request time format. */
function requestTime(at: Date): string {
  const [, day, month, year, time] = /^\w+, (\d\d) (\w+) (\d{4}) ([\d:]+) GMT$/.exec(at.toUTCString())!;
  return `${day}/${month}/${year}:${time} +0000`;
}

/** Builds the event API Gateway (HTTP API, payload 2.0) hands the integration for `request`. */
export function toHttpApiEvent(request: IncomingMessage, body: Buffer, routeKey: string, at = new Date()): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, values] of Object.entries(request.headersDistinct)) {
    if (!values) continue;
    if (name === 'cookie') cookies = values.flatMap((value) => value.split(';').map((cookie) => cookie.trim()));
    else headers[name] = values.join(',');
  }
  const sourceIp = request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1';
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${sourceIp}` : sourceIp;
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-forwarded-port'] ??= String(request.socket.localPort ?? '');
  const queryStringParameters: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) queryStringParameters[key] = url.searchParams.getAll(key).join(',');
  const hasBody = body.length > 0;
  const text = isText(headers['content-type']);
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies ? { cookies } : {}),
    headers,
    ...(url.search ? { queryStringParameters } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: API_ID,
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0]!,
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: requestTime(at),
      timeEpoch: at.getTime(),
    },
    ...(hasBody ? { body: text ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: hasBody && !text,
  };
}

interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

const json = (statusCode: number, message: string): HttpResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify({ message })),
});

/** Maps a function's result as API Gateway does: a bare value is a 200 JSON body. */
function fromResult(result: APIGatewayProxyResultV2): HttpResponse {
  if (typeof result !== 'object' || result === null || !('statusCode' in result)) {
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(result)) };
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name.toLowerCase()] = String(value);
  const body = result.body ?? '';
  return {
    statusCode: result.statusCode ?? 200,
    headers,
    body: result.isBase64Encoded ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8'),
  };
}

/** Reads the request body, or `undefined` once it passes API Gateway's limit. */
async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_PAYLOAD_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Serves `routes` on `host:port` (port 0 picks a free one) until `close()`. */
export async function startHttpApi(options: {
  readonly port: number;
  readonly host?: string;
  readonly routes: readonly HttpRoute[];
  readonly onRequest?: (request: HandledRequest) => void;
  /** Called when the function itself fails (throws or times out): API Gateway answers 500. */
  readonly onFunctionError?: (routeKey: string, error: Error) => void;
}): Promise<RunningHttpApi> {
  const host = options.host ?? '127.0.0.1';
  const routes = new Map(options.routes.map((route) => [`${route.method} ${route.path}`, route]));

  async function respond(request: IncomingMessage): Promise<HttpResponse & { routeKey: string; requestBody: Buffer }> {
    const routeKey = `${request.method} ${new URL(request.url ?? '/', 'http://localhost').pathname}`;
    const route = routes.get(routeKey);
    const body = await readBody(request);
    if (!route) return { ...json(404, 'Not Found'), routeKey, requestBody: Buffer.alloc(0) };
    if (!body) return { ...json(413, 'Request Entity Too Large'), routeKey, requestBody: Buffer.alloc(0) };
    try {
      return { ...fromResult(await invokeLocally(route.function, toHttpApiEvent(request, body, routeKey))), routeKey, requestBody: body };
    } catch (error) {
      options.onFunctionError?.(routeKey, error as Error);
      return { ...json(500, 'Internal Server Error'), routeKey, requestBody: body };
    }
  }

  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const started = Date.now();
    respond(request).then(
      (result) => {
        response.writeHead(result.statusCode, { ...result.headers, 'apigw-requestid': randomUUID() });
        response.end(result.body);
        options.onRequest?.({
          routeKey: result.routeKey,
          statusCode: result.statusCode,
          headers: toHeaderRecord(request),
          responseBody: result.body.toString('utf8'),
          requestBody: result.requestBody,
          durationMs: Date.now() - started,
        });
      },
      () => {
        // The client went away mid-request: nothing to answer.
        response.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function toHeaderRecord(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(request.headersDistinct)) if (values) headers[name] = values.join(',');
  return headers;
}
