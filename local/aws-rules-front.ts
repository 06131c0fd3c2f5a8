import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { accessRequestsOf, signerOf, UnrecognisedRequestError, type AccessEvaluator } from './aws-access';

/**
 * A front for a stand-in (fauxqs for SQS and S3, DynamoDB Local) that applies the rules of AWS our
 * code depends on and the emulators do not enforce; every request passes through it unchanged
 * otherwise. It listens on loopback only.
 *
 * - IAM, once `enforce` is given the stack's access model: a request signed with a function's
 *   credentials is refused as AWS refuses it unless that function's role (and the target's resource
 *   policy) allows every action it needs (`aws-access.ts`).
 * - S3 conditional writes: PutObject with `If-None-Match: *` fails with 412 when the key exists;
 *   with `If-Match: <etag>` it fails with 412 when the object's ETag differs, and 404 when there is
 *   no object. Check and write are one step per key, as in S3, so two racing writers cannot both win.
 * - S3 reads of a missing key: GetObject and HeadObject answer 404 only to a caller allowed
 *   `s3:ListBucket` on the bucket, and 403 AccessDenied to any other, as S3 does. Without an access
 *   model every caller gets 403, as no role of the stack may list the bucket.
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
function forward(upstream: URL, request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
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
    proxied.end(body);
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

/** A refusal in the shape the service's SDK client reads: S3's XML, or the JSON protocols' `__type`. */
function accessDenied(response: ServerResponse, service: string, message: string): void {
  if (service === 's3') {
    s3Error(response, 403, 'AccessDenied', message);
    return;
  }
  // SQS's JSON protocol keeps the query protocol's error code in a header, as AWS sends it.
  const headers = service === 'sqs' ? { 'x-amzn-query-error': 'AccessDenied;Sender' } : {};
  response.writeHead(service === 'sqs' ? 403 : 400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID(), ...headers });
  response.end(JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message, Message: message }));
}

export interface RunningFront {
  readonly endpoint: string;
  /** Evaluates every request signed with a function's credentials against `access` from now on (undefined: none). */
  enforce(access: AccessEvaluator | undefined): void;
  stop(): Promise<void>;
}

/** Starts the front on 127.0.0.1 (a free port unless `port` is given), forwarding to `upstream`. */
export async function startAwsRulesFront(upstreamEndpoint: string, port = 0): Promise<RunningFront> {
  const upstream = new URL(upstreamEndpoint);
  let access: AccessEvaluator | undefined;
  /** Object writes in progress, per bucket and key: each waits for the one before it. */
  const writes = new Map<string, Promise<void>>();

  /** An object write, one at a time per key; its `If-Match` / `If-None-Match` checked against the object it replaces. */
  const objectWrite = async (request: IncomingMessage, response: ServerResponse, key: string, body: Buffer): Promise<void> => {
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

  /** Whether S3 tells this caller that a key is missing (404), rather than refusing (403): only if it may list the bucket. */
  const mayList = async (accessKeyId: string | undefined, bucket: string): Promise<boolean> => {
    if (!access || accessKeyId === undefined || !access.governs(accessKeyId)) return access !== undefined;
    return (await access.decide(accessKeyId, [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` }])).allowed;
  };

  /** A read of an object: a missing key answers 404 to a caller that may list the bucket, 403 to any other. */
  const objectRead = async (request: IncomingMessage, response: ServerResponse, bucket: string, accessKeyId: string | undefined, body: Buffer): Promise<void> => {
    const etag = await currentEtag(upstream, pathOf(request));
    if (etag === undefined) {
      const [status, code, message] = (await mayList(accessKeyId, bucket))
        ? [404, 'NoSuchKey', 'The specified key does not exist.']
        : [403, 'AccessDenied', 'Access Denied'];
      if (request.method === 'HEAD') {
        response.writeHead(status, { 'x-amz-request-id': randomUUID() });
        response.end();
      } else {
        s3Error(response, status, code, message);
      }
      return;
    }
    await forward(upstream, request, response, body);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const body = await readBody(request);
    const signer = signerOf(request.headers);
    if (access && signer && access.governs(signer.accessKeyId)) {
      const signed = { method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers, body };
      let decision;
      try {
        decision = await access.decide(signer.accessKeyId, accessRequestsOf(signed, signer.service));
      } catch (error) {
        if (!(error instanceof UnrecognisedRequestError)) throw error;
        accessDenied(response, signer.service, error.message);
        return;
      }
      if (!decision.allowed) {
        accessDenied(response, signer.service, decision.message);
        return;
      }
    }
    const object = signer?.service === 's3' || !signer ? objectOf(request.url ?? '/') : undefined;
    const isObjectRequest = object !== undefined && !SUBRESOURCES.some((name) => object.query.has(name));
    if (isObjectRequest && request.method === 'PUT') return objectWrite(request, response, `${object.bucket}/${object.key}`, body);
    if (isObjectRequest && (request.method === 'GET' || request.method === 'HEAD')) return objectRead(request, response, object.bucket, signer?.accessKeyId, body);
    return forward(upstream, request, response, body);
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  // A port taken since the pipeline checked it fails the start (EADDRINUSE) instead of crashing the process.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: boundPort } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${boundPort}`,
    enforce: (model) => {
      access = model;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
