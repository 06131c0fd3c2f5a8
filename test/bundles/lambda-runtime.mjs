// A stand-in for the AWS Lambda Node.js runtime, for one function, in a child process of a test.
//
// It is copied next to a copy of the function's bundle (never run from the repository) and started
// with plain `node`, in the task folder, with only the environment Lambda would give the function.
// Like the runtime it finds the handler from `_HANDLER` under `LAMBDA_TASK_ROOT` (`index.handler` is
// `index.js`, `.mjs` or `.cjs`, export `handler`), loads it once (the cold start) and then invokes it
// once per event with a Lambda context and the function's timeout. Modules outside the bundle are
// found only where the runtime finds them: `NODE_PATH`, which holds the AWS SDK. (Since nodejs18.x
// the runtime searches NODE_PATH for ES module imports too, which Node itself does not: a resolve
// hook does it here.)
//
// Protocol (Node IPC): the parent sends `{ id, kind, ... }` and gets `{ id, ok, ... }` back.
//   resolve { specifiers }  -> { reachable: { [specifier]: path | null } }   (loads nothing)
//   init                    -> {}                                             (loads the handler)
//   loaded                  -> { packages: [name, ...] }   (packages loaded from node_modules so far)
//   invoke  { event, traceId } -> { result } or { error: { errorType, errorMessage } }
// The function's timeout in seconds is the only argument. Nothing of an event or a result is printed.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const timeoutMs = Number(process.argv[2]) * 1000;
const taskRoot = process.env.LAMBDA_TASK_ROOT;
const handlerSetting = process.env._HANDLER;
const requireFromTask = createRequire(path.join(taskRoot, 'index.js'));
const nodePath = (process.env.NODE_PATH ?? '').split(path.delimiter).filter(Boolean);

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (error?.code !== 'ERR_MODULE_NOT_FOUND' || /^(\.|\/|[a-z]+:)/i.test(specifier)) throw error;
      for (const dir of nodePath) {
        try {
          // Resolving from a file inside a NODE_PATH folder finds the packages that folder holds.
          return nextResolve(specifier, { ...context, parentURL: pathToFileURL(path.join(dir, 'index.mjs')).href });
        } catch {
          // not in this folder
        }
      }
      throw error;
    }
  },
});

/** Whether the nearest package.json above `file` says `"type": "module"` (the runtime's check). */
function typeModule(file) {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        return JSON.parse(readFileSync(candidate, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

const tryRequire = (file) => (existsSync(file) ? requireFromTask(file) : undefined);
const tryImport = async (file) => (existsSync(file) ? import(pathToFileURL(file).href) : undefined);

/** Loads the module of `_HANDLER` as the runtime does: `.js` (CommonJS unless type module), `.mjs`, `.cjs`. */
async function loadHandler() {
  const slash = handlerSetting.lastIndexOf('/');
  const match = /^([^.]*)\.(.*)$/.exec(handlerSetting.slice(slash + 1));
  if (!match) throw Object.assign(new Error(`Bad handler ${handlerSetting}`), { name: 'Runtime.MalformedHandlerName' });
  const [, moduleName, exportPath] = match;
  const base = path.resolve(taskRoot, handlerSetting.slice(0, slash + 1), moduleName);
  const esm = typeModule(`${base}.js`);
  const loaded =
    (!esm && tryRequire(`${base}.js`)) ||
    (esm && (await tryImport(`${base}.js`))) ||
    (await tryImport(`${base}.mjs`)) ||
    tryRequire(`${base}.cjs`);
  if (!loaded) throw Object.assign(new Error(`Cannot find module '${moduleName}'`), { name: 'Runtime.ImportModuleError' });
  const handler = exportPath.split('.').reduce((object, key) => object?.[key], loaded);
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${handlerSetting} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return handler;
}

/**
 * Where `specifier` would be found from the bundle: a path, or null. A package is reachable when
 * require finds it, or when its folder lies on a lookup path (an ESM-only package such as svix has
 * no `require` export, yet an `import` from the bundle would still reach it).
 */
function reachable(specifier) {
  try {
    return requireFromTask.resolve(specifier);
  } catch {
    for (const dir of requireFromTask.resolve.paths(specifier) ?? []) {
      const candidate = path.join(dir, specifier, 'package.json');
      if (existsSync(candidate)) return candidate;
    }
    return null;
  }
}

const fail = (name) => () => {
  throw new Error(`context.${name} is not supported`);
};

function contextFor(deadline) {
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: randomUUID(),
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: fail('done'),
    fail: fail('fail'),
    succeed: fail('succeed'),
  };
}

const asError = (error) => ({ errorType: error?.name ?? 'Error', errorMessage: String(error?.message ?? error) });

let handler;

async function answer(message) {
  switch (message.kind) {
    case 'resolve':
      return { reachable: Object.fromEntries(message.specifiers.map((specifier) => [specifier, reachable(specifier)])) };
    case 'init':
      handler ??= await loadHandler();
      return {};
    case 'loaded': {
      const names = Object.keys(requireFromTask.cache).map((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]);
      return { packages: [...new Set(names.filter(Boolean))].sort() };
    }
    case 'invoke': {
      handler ??= await loadHandler();
      // The runtime sets the trace header of each invocation in the environment.
      process.env._X_AMZN_TRACE_ID = message.traceId;
      const deadline = Date.now() + timeoutMs;
      let timer;
      const timedOut = new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`Task timed out after ${timeoutMs / 1000} seconds`), { name: 'Sandbox.Timedout' })),
          timeoutMs,
        );
      });
      try {
        const result = await Promise.race([handler(message.event, contextFor(deadline)), timedOut]);
        return { result: result === undefined ? null : result };
      } finally {
        clearTimeout(timer);
      }
    }
    default:
      throw new Error(`unknown request ${message.kind}`);
  }
}

process.on('message', (message) => {
  answer(message).then(
    (reply) => process.send({ id: message.id, ok: true, ...reply }),
    (error) => process.send({ id: message.id, ok: false, error: asError(error) }),
  );
});
