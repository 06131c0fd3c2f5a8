import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';

/**
 * A front for the SQS and S3 stand-in (fauxqs) that applies the rules of AWS our code depends on and
 * the emulator does not enforce; every request passes through it unchanged otherwise. It listens on
 * loopback only.
 *
 * - S3 conditional writes: PutObject with `If-None-Match: *` fails with 412 when the key exists;
 *   with `If-Match: <etag>` it fails with 412 when the object's ETag differs, and 404 when there is
 *   no object. Check and write are one step per key, as in S3, so two racing writers cannot both win.
 * - S3 reads of a missing key: GetObject and HeadObject answer 403 AccessDenied, not 404, as S3
 *   answers a caller without `s3:ListBucket` on the bucket, which no role of the stack has.
 */

/** Query parameters that address something other than the object itself (multipart uploads, ACLs, tags, ...). */
const SUBRESOURCES = ['uploadId', 'uploads', 'partNumber', 'acl', 'tagging', 'attributes', 'legal-hold', 'retention', 'torrent', 'renameObject'];

/** The path of a request, without its query. */
const pathOf = (request: IncomingMessage): string => new URL(request.url ?? '/', 'http://front').pathname;

/** The bucket and key of a path-style object request (`/bucket/key...`), when it is one. */
function objectOf(url: string): { bucket: string; key: string; query: URLSearchParams } | undefined {
  const parsed = new URL(url, 'http://front');
  const [, bucket, ...key] = parsed.pathname.split('/');
  if (!bucket || key.length === 0 || key.join('/') === '') return undefined;
  return { bucket, key: key.join('/'), query: parsed.searchParams };
}

function s3Error(response: ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': randomUUID() });
  response.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

/** Sends a request to the emulator and pipes its answer back. */
function forward(upstream: URL, request: IncomingMessage, response: ServerResponse, body: Buffer | undefined): Promise<void> {
  return new Promise((resolve) => {
    const proxied = httpRequest(
      new URL(request.url ?? '/', upstream),
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
        answer.once('end', resolve);
        answer.once('error', resolve);
      },
    );
    proxied.once('error', () => {
      response.destroy();
      resolve();
    });
    if (body) proxied.end(body);
    else request.pipe(proxied);
  });
}

/** The ETag of the object at `path` on the emulator, undefined when there is none. */
function currentEtag(upstream: URL, path: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const head = httpRequest(new URL(path, upstream), { method: 'HEAD' }, (answer) => {
      answer.resume();
      resolve(answer.statusCode === 200 ? String(answer.headers.etag ?? '') : undefined);
    });
    head.once('error', reject);
    head.end();
  });
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface RunningFront {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts the front on 127.0.0.1 (a free port unless `port` is given), forwarding to `upstream`. */
export async function startAwsRulesFront(upstreamEndpoint: string, port = 0): Promise<RunningFront> {
  const upstream = new URL(upstreamEndpoint);
  /** Object writes in progress, per bucket and key: each waits for the one before it. */
  const writes = new Map<string, Promise<void>>();

  /** An object write, one at a time per key; its `If-Match` / `If-None-Match` checked against the object it replaces. */
  const objectWrite = async (request: IncomingMessage, response: ServerResponse, key: string): Promise<void> => {
    const body = await readBody(request);
    const previous = writes.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const queued = previous.then(() => mine);
    writes.set(key, queued);
    await previous;
    try {
      const ifNoneMatch = request.headers['if-none-match'];
      const ifMatch = request.headers['if-match'];
      if (ifNoneMatch !== undefined || ifMatch !== undefined) {
        const etag = await currentEtag(upstream, pathOf(request));
        if (ifMatch !== undefined && etag === undefined) {
          s3Error(response, 404, 'NoSuchKey', 'The specified key does not exist.');
          return;
        }
        if ((ifNoneMatch === '*' && etag !== undefined) || (ifMatch !== undefined && ifMatch !== etag)) {
          s3Error(response, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
          return;
        }
      }
      await forward(upstream, request, response, body);
    } finally {
      release();
      if (writes.get(key) === queued) writes.delete(key);
    }
  };

  /** A read of an object: a missing key answers 403, as S3 answers a caller that cannot list the bucket. */
  const objectRead = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const etag = await currentEtag(upstream, pathOf(request));
    if (etag === undefined) {
      if (request.method === 'HEAD') {
        response.writeHead(403, { 'x-amz-request-id': randomUUID() });
        response.end();
      } else {
        s3Error(response, 403, 'AccessDenied', 'Access Denied');
      }
      return;
    }
    await forward(upstream, request, response, undefined);
  };

  const server = createServer((request, response) => {
    const object = objectOf(request.url ?? '/');
    const isObjectRequest = object !== undefined && !SUBRESOURCES.some((name) => object.query.has(name));
    const handled = isObjectRequest && request.method === 'PUT'
      ? objectWrite(request, response, `${object.bucket}/${object.key}`)
      : isObjectRequest && (request.method === 'GET' || request.method === 'HEAD')
        ? objectRead(request, response)
        : forward(upstream, request, response, undefined);
    handled.catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: boundPort } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${boundPort}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
