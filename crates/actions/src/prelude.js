// The host side of an action's context, evaluated once in every new context.
//
// The block below runs once per context: it keeps the built-ins it relies on, installs
// `console` and `require`, and defines `prelude`, which the engine calls once per
// context with the limits and the trigger and which returns the controller the engine
// drives (its `begin` starts every execution afresh) (the engine evaluates this file as a strict block ending in `prelude`: a
// declaration parses faster than a parenthesised expression, which QuickJS scans twice).
// An action's context is kept for its next executions, as Auth0 keeps an action's module
// loaded: its top level runs once, the first execution's, and what it leaves in module
// scope stays. A rule gets a new context every time.
//
// Nothing here calls into Rust: `api` methods only record `[method, JSON of the
// arguments]`, `console` writes to the running execution's `output.log`, and the cache
// works on a snapshot whose writes go back as a list. The engine reads it all as data
// once the execution ends and validates and applies it in Rust. (Rust functions called
// from JavaScript would keep a context alive through rquickjs's per-runtime prototype
// cache.)

// Captured before the administrator's code can replace them.
const stringify = JSON.stringify;
const parse = JSON.parse;
const keys = Object.keys;
const ErrorOf = Error;
const TypeErrorOf = TypeError;
const StringOf = String;
const now = Date.now;
const then = Promise.prototype.then;
const resolved = Promise.resolve.bind(Promise);

// The execution running now: where `console` writes and how much it may, and the state
// `api` records into.
let active = { output: { log: '' }, rawLogCap: 0, state: null, maxKeyBytes: 0, maxValueBytes: 0, executedRules: [] };
// The action's `module`, once its top level has run in this context.
let loadedModule = null;

function describeError(error) {
  try {
    if (error !== null && typeof error === 'object') {
      const message = error.message !== undefined ? StringOf(error.message) : describe(error);
      return (error.name ? StringOf(error.name) : 'Error') + ': ' + message;
    }
    return 'thrown: ' + StringOf(error);
  } catch (_) {
    return 'thrown: an unprintable value';
  }
}

function describe(value) {
  if (typeof value === 'string') return value;
  if (value instanceof ErrorOf) return describeError(value);
  try {
    if (typeof value === 'object' && value !== null) {
      const text = stringify(value);
      if (text !== undefined) return text;
    }
    return StringOf(value);
  } catch (_) {
    return '[unprintable]';
  }
}

function log(...args) {
  let line = '';
  for (let i = 0; i < args.length; i++) line += (i ? ' ' : '') + describe(args[i]);
  line += '\n';
  const output = active.output;
  const room = active.rawLogCap - output.log.length;
  if (room <= 0) return;
  let kept = line.slice(0, room);
  const last = kept.charCodeAt(kept.length - 1);
  // Never end on half of a surrogate pair.
  if (kept.length < line.length && last >= 0xd800 && last <= 0xdbff) kept = kept.slice(0, -1);
  output.log += kept;
}
globalThis.console = { log, info: log, warn: log, error: log, debug: log, trace: log };

function require() {
  throw new ErrorOf("require is not supported: bundle your dependencies into the action's code");
}
globalThis.require = require;

function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    bytes += unit < 0x80 ? 1 : unit < 0x800 ? 2 : unit >= 0xd800 && unit <= 0xdbff ? (i++, 4) : 3;
  }
  return bytes;
}

// The trigger's cache when the execution started plus its own writes; the engine
// applies the writes (`cache_ops`) with the same limits. Like `api`, it works on the
// running execution's state.
const cache = {
  get(key) {
    const entry = active.state.cache[StringOf(key)];
    return entry === undefined || entry.expires_at <= now()
      ? undefined
      : { value: entry.value, expires_at: entry.expires_at };
  },
  set(key, value, options) {
    const name = StringOf(key);
    const at = now();
    if (typeof value !== 'string') return { type: 'error', code: 'invalid_argument' };
    if (!name || utf8Length(name) > active.maxKeyBytes) return { type: 'error', code: 'invalid_key' };
    if (value.length > active.maxValueBytes || utf8Length(value) > active.maxValueBytes) {
      return { type: 'error', code: 'value_too_large' };
    }
    let expiresAt = at + 15 * 60 * 1000;
    if (options && options.expires_at !== undefined) expiresAt = Number(options.expires_at);
    else if (options && options.ttl !== undefined) expiresAt = at + Number(options.ttl);
    if (!(expiresAt > at)) return { type: 'error', code: 'invalid_expiry' };
    active.state.cache[name] = { value: value, expires_at: expiresAt };
    active.state.cacheOps.push(['set', name, value, expiresAt]);
    return { type: 'success' };
  },
  delete(key) {
    delete active.state.cache[StringOf(key)];
    active.state.cacheOps.push(['delete', StringOf(key)]);
    return { type: 'success' };
  },
};

// `api` is built once per context and records into the running execution's state.
// Each trigger's recorded methods; `!` marks one that throws "not supported yet".
const METHODS = {
  'post-login': 'access.deny accessToken.setCustomClaim accessToken.addScope accessToken.removeScope idToken.setCustomClaim user.setAppMetadata user.setUserMetadata multifactor.enable !multifactor.getEnrolledFactors !redirect.sendUserTo !redirect.encodeToken !redirect.validateToken !authentication.challengeWith !authentication.challengeWithAny !authentication.enrollWith !authentication.enrollWithAny !authentication.recordMethod !authentication.setPrimaryUser !session.revoke !session.setExpiresAt !session.setIdleExpiresAt !session.setMetadata !session.deleteMetadata !session.evictMetadata !refreshToken.revoke !refreshToken.setExpiresAt !refreshToken.setIdleExpiresAt !refreshToken.setMetadata !refreshToken.deleteMetadata !transaction.setMetadata !transaction.addTargetScope !transaction.removeTargetScope !transaction.setTargetScopes !transaction.clearTargetScopes !prompt.render !samlResponse.setAttribute',
  'credentials-exchange': 'access.deny accessToken.setCustomClaim !transaction.addTargetScope !transaction.removeTargetScope !transaction.setTargetScopes !transaction.clearTargetScopes',
  'pre-user-registration': 'access.deny validation.error user.setAppMetadata user.setUserMetadata',
};
const DENY_CODES = ['invalid_scope', 'invalid_request', 'server_error'];
const MFA_PROVIDERS = ['any', 'guardian', 'google-authenticator', 'duo', 'none'];

function buildApi(trigger) {
  const api = { cache };
  for (const entry of (METHODS[trigger] || '').split(' ')) {
    if (!entry) continue;
    const unsupported = entry[0] === '!';
    const path = unsupported ? entry.slice(1) : entry;
    const [namespace, name] = path.split('.');
    (api[namespace] = api[namespace] || {})[name] = function (...args) {
      if (unsupported) throw new ErrorOf('api.' + path + ' is not supported yet');
      if (path === 'access.deny' && trigger === 'credentials-exchange' && DENY_CODES.indexOf(args[0]) < 0) {
        throw new TypeErrorOf('api.access.deny: the code must be one of ' + DENY_CODES.join(', ') + ' (got ' + stringify(StringOf(args[0])) + ')');
      }
      if (path === 'multifactor.enable' && MFA_PROVIDERS.indexOf(args[0]) < 0) {
        throw new TypeErrorOf('api.multifactor.enable: the provider must be one of ' + MFA_PROVIDERS.join(', ') + ' (got ' + stringify(StringOf(args[0])) + ')');
      }
      // A claim set to undefined is left out, as JSON would.
      if (name === 'setCustomClaim' && args[1] === undefined) return api;
      let text;
      try {
        text = stringify(args.map((arg) => (arg === undefined ? null : arg)));
      } catch (error) {
        throw new TypeErrorOf('api.' + path + ': the value cannot be serialised to JSON (' + describeError(error) + ')');
      }
      active.state.calls.push([path, text]);
      return api;
    };
  }
  if (trigger === 'post-login') {
    // No redirect can happen yet: code written as Auth0 advises checks this first.
    api.redirect.canRedirect = () => false;
    api.rules = { wasExecuted: (id) => active.executedRules.indexOf(StringOf(id)) >= 0 };
  }
  return api;
}

class UnauthorizedError extends ErrorOf {
  constructor(message) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

// Called once per context with the limits and the trigger: builds `api` and returns the
// controller the engine drives for every execution in this context. `begin` resets the
// output and the state for each execution (the objects are reused: making them anew
// cost as much as a small handler); a promise reaction carries the number of the
// execution that attached it, so a promise settled late never counts for another one.
function prelude(maxKeyBytes, maxValueBytes, trigger) {
  const api = buildApi(trigger);
  const output = { log: '' };
  const state = { calls: [], settled: false, error: null, rule: null, cache: {}, cacheOps: [] };
  active = { output, rawLogCap: 0, state, maxKeyBytes, maxValueBytes, executedRules: [] };
  let execution = 0;

  function fail(number, error) {
    if (number === execution && !state.settled) {
      state.settled = true;
      state.error = describeError(error);
    }
  }

  const controller = {
    // The console output, which the engine reads even when the execution was interrupted.
    output,

    begin(rawLogCap, executedRules) {
      execution += 1;
      output.log = '';
      state.calls = [];
      state.settled = false;
      state.error = null;
      state.rule = null;
      state.cache = {};
      state.cacheOps = [];
      active.rawLogCap = rawLogCap;
      active.executedRules = executedRules;
    },

    // Runs the module's top level (in this context's first execution only), then its
    // handler; a returned promise settles while the engine drains the job queue.
    startAction(handlerName, eventJson, secretsJson, cacheJson, moduleFunction) {
      const number = execution;
      try {
        // Most executions have no cache entries and no secrets: skip parsing `{}`.
        if (cacheJson !== '{}') {
          const entries = parse(cacheJson);
          for (const name of keys(entries)) state.cache[name] = entries[name];
        }
        const event = parse(eventJson);
        event.secrets = secretsJson === '{}' ? {} : parse(secretsJson);
        if (loadedModule === null) {
          const module = { exports: {} };
          moduleFunction.call(module.exports, module.exports, module, require);
          loadedModule = module;
        }
        const exported = loadedModule.exports;
        const handler = exported == null ? undefined : exported[handlerName];
        if (typeof handler !== 'function') throw new ErrorOf('the action does not export ' + handlerName);
        then.call(
          resolved(handler(event, api)),
          () => {
            if (number === execution) state.settled = true;
          },
          (error) => fail(number, error)
        );
      } catch (error) {
        fail(number, error);
      }
    },

    // Calls a legacy Rule `function (user, context, callback)`.
    startRule(userJson, contextJson, configurationJson, ruleFunction) {
      const number = execution;
      try {
        globalThis.UnauthorizedError = UnauthorizedError;
        globalThis.configuration = parse(configurationJson);
        const user = parse(userJson);
        const context = parse(contextJson);
        const callback = (error, nextUser, nextContext) => {
          if (number !== execution || state.settled) return;
          if (error && (error instanceof UnauthorizedError || error.name === 'UnauthorizedError')) {
            state.settled = true;
            state.calls.push(['access.deny', stringify([StringOf(error.message === undefined ? '' : error.message)])]);
          } else if (error) {
            fail(number, error);
          } else {
            try {
              const passed = { user: nextUser === undefined ? user : nextUser, context: nextContext === undefined ? context : nextContext };
              state.rule = parse(stringify(passed));
              state.settled = true;
            } catch (serialiseError) {
              fail(number, new TypeErrorOf('callback: the user or context cannot be serialised to JSON (' + describeError(serialiseError) + ')'));
            }
          }
        };
        if (typeof ruleFunction !== 'function') throw new ErrorOf('the rule is not a function (user, context, callback)');
        const result = ruleFunction(user, context, callback);
        // An async rule that rejects before calling back fails.
        if (result && typeof result.then === 'function') then.call(resolved(result), undefined, (error) => fail(number, error));
      } catch (error) {
        fail(number, error);
      }
    },

    // What the execution produced, for Rust to read element by element (a fresh array
    // of plain values, cheaper to make than an object: no getter of the code's runs):
    // [settled, error, calls, rule, cacheOps]. `calls` already holds strings; the rule's
    // state and the cache writes are JSON, and only when there are any (stringifying
    // costs more than the handler of a small action).
    finish() {
      const failed = state.error !== null;
      return [
        state.settled === true,
        state.error === null ? null : StringOf(state.error),
        failed ? [] : state.calls,
        failed || state.rule === null ? null : stringify(state.rule),
        state.cacheOps.length === 0 ? null : stringify(state.cacheOps),
      ];
    },
  };
  return controller;
}
