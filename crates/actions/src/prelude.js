// The host side of one execution, evaluated first in every fresh context.
//
// It is an expression: a function the engine calls with the limits it needs and that
// returns the controller the engine drives. Nothing here calls into Rust: the `api`
// objects *record* what the code asks for, `console` writes to `output.log`, and the
// cache works on a snapshot whose changes go back as a list. The engine reads all of it
// as data once the execution ends, validates it and applies it. (Rust functions called
// from JavaScript would also keep the last context alive through rquickjs's
// per-runtime prototype cache, holding its heap into the next execution.)
(function (rawLogCap, cacheMaxKeyBytes, cacheMaxValueBytes) {
  'use strict';

  // Captured now, before the administrator's code can replace them.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const createObject = Object.create;
  const defineProperty = Object.defineProperty;
  const promiseResolve = Promise.resolve.bind(Promise);
  const promiseThen = Promise.prototype.then;
  const dateNow = Date.now;
  const ErrorClass = Error;
  const TypeErrorClass = TypeError;
  const StringOf = String;

  const REQUIRE_MESSAGE =
    "require is not supported: bundle your dependencies into the action's code";
  const CACHE_DEFAULT_TTL_MS = 15 * 60 * 1000;

  function describe(value) {
    if (typeof value === 'string') return value;
    if (value instanceof ErrorClass) return describeError(value);
    if (typeof value === 'object' && value !== null) {
      try {
        const text = stringify(value);
        if (text !== undefined) return text;
      } catch (_) {
        // Cyclic or BigInt inside: fall back to String().
      }
    }
    try {
      return StringOf(value);
    } catch (_) {
      return '[unprintable]';
    }
  }

  function describeError(error) {
    try {
      if (error !== null && typeof error === 'object') {
        const name = error.name ? StringOf(error.name) : 'Error';
        const message = error.message !== undefined ? StringOf(error.message) : describe(error);
        return name + ': ' + message;
      }
      return 'thrown: ' + StringOf(error);
    } catch (_) {
      return 'thrown: an unprintable value';
    }
  }

  // What the engine reads back even when the execution was cut short.
  const output = { log: '' };

  function appendLog(line) {
    const room = rawLogCap - output.log.length;
    if (room <= 0) return;
    let kept = line.length <= room ? line : line.slice(0, room);
    // Never end on half of a surrogate pair.
    const last = kept.charCodeAt(kept.length - 1);
    if (kept.length < line.length && last >= 0xd800 && last <= 0xdbff) kept = kept.slice(0, -1);
    output.log += kept;
  }

  const consoleObject = {};
  for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
    consoleObject[level] = function (...args) {
      let line = '';
      for (let i = 0; i < args.length; i++) line += (i ? ' ' : '') + describe(args[i]);
      appendLog(line + '\n');
    };
  }
  globalThis.console = consoleObject;

  function require() {
    throw new ErrorClass(REQUIRE_MESSAGE);
  }
  globalThis.require = require;

  class UnauthorizedError extends ErrorClass {
    constructor(message) {
      super(message);
      this.name = 'UnauthorizedError';
    }
  }

  // A value crossing into Rust: serialised now, so a later change to the object is not
  // seen and a value JSON cannot carry fails at the call that passed it.
  function toJson(what, value) {
    try {
      return stringify(value);
    } catch (error) {
      throw new TypeErrorClass(
        what + ': the value cannot be serialised to JSON (' + describeError(error) + ')'
      );
    }
  }

  function dictionary() {
    return createObject(null);
  }

  function newRecord() {
    return {
      access_token_claims: dictionary(),
      id_token_claims: dictionary(),
      scopes: [],
      app_metadata: dictionary(),
      user_metadata: dictionary(),
      denied: null,
    };
  }

  const state = {
    record: newRecord(),
    settled: false,
    error: null,
    rule: null,
    cache: dictionary(),
    cacheOps: [],
  };

  function notSupported(name) {
    return function () {
      throw new ErrorClass(name + ' is not supported yet');
    };
  }

  function unsupportedNamespace(namespace, methods) {
    const object = {};
    for (const method of methods) object[method] = notSupported('api.' + namespace + '.' + method);
    return object;
  }

  function utf8Length(text) {
    let bytes = 0;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (unit < 0x80) bytes += 1;
      else if (unit < 0x800) bytes += 2;
      else if (unit >= 0xd800 && unit <= 0xdbff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    }
    return bytes;
  }

  // The trigger's cache as it was when the execution started, plus this execution's
  // own writes; the writes go back to the engine as `cache_ops`, which applies them
  // with the same limits (and the per-trigger entry cap).
  function buildCache() {
    const success = () => ({ type: 'success' });
    const failure = (code) => ({ type: 'error', code: code });
    return {
      get(key) {
        const entry = state.cache[StringOf(key)];
        if (entry === undefined || entry.expires_at <= dateNow()) return undefined;
        return { value: entry.value, expires_at: entry.expires_at };
      },
      set(key, value, options) {
        const name = StringOf(key);
        if (typeof value !== 'string') return failure('invalid_argument');
        if (name.length === 0 || name.length > cacheMaxKeyBytes || utf8Length(name) > cacheMaxKeyBytes) {
          return failure('invalid_key');
        }
        if (value.length > cacheMaxValueBytes || utf8Length(value) > cacheMaxValueBytes) {
          return failure('value_too_large');
        }
        const now = dateNow();
        let expiresAt = now + CACHE_DEFAULT_TTL_MS;
        if (options && options.expires_at !== undefined) expiresAt = Number(options.expires_at);
        else if (options && options.ttl !== undefined) expiresAt = now + Number(options.ttl);
        if (!(expiresAt > now)) return failure('invalid_expiry');
        state.cache[name] = { value: value, expires_at: expiresAt };
        state.cacheOps.push(['set', name, value, expiresAt]);
        return success();
      },
      delete(key) {
        const name = StringOf(key);
        delete state.cache[name];
        state.cacheOps.push(['delete', name]);
        return success();
      },
    };
  }

  function buildApi(trigger, record, executedRules) {
    const api = {};
    const chain = (fn) =>
      function (...args) {
        fn(...args);
        return api;
      };
    const setter = (target, what) =>
      chain(function (key, value) {
        const text = toJson(what, value);
        const name = StringOf(key);
        if (text === undefined) delete target[name];
        else target[name] = parse(text);
      });
    const metadataSetter = (target, what) =>
      chain(function (key, value) {
        const text = toJson(what, value === undefined ? null : value);
        target[StringOf(key)] = parse(text);
      });
    const scope = (op) =>
      chain(function (name) {
        record.scopes.push([op, StringOf(name)]);
      });
    const deny = (code, reason, userMessage) => {
      record.denied = {
        code: code,
        reason: reason === undefined || reason === null ? '' : StringOf(reason),
        user_message:
          userMessage === undefined || userMessage === null ? null : StringOf(userMessage),
      };
    };
    const cache = buildCache();

    switch (trigger) {
      case 'post-login':
        api.access = { deny: chain((reason) => deny('access_denied', reason)) };
        api.accessToken = {
          setCustomClaim: setter(record.access_token_claims, 'api.accessToken.setCustomClaim'),
          addScope: scope('add'),
          removeScope: scope('remove'),
        };
        api.idToken = {
          setCustomClaim: setter(record.id_token_claims, 'api.idToken.setCustomClaim'),
        };
        api.user = {
          setAppMetadata: metadataSetter(record.app_metadata, 'api.user.setAppMetadata'),
          setUserMetadata: metadataSetter(record.user_metadata, 'api.user.setUserMetadata'),
        };
        api.cache = cache;
        api.multifactor = unsupportedNamespace('multifactor', ['enable', 'getEnrolledFactors']);
        api.redirect = unsupportedNamespace('redirect', [
          'sendUserTo',
          'encodeToken',
          'validateToken',
        ]);
        // No redirect can happen yet: code written as Auth0 advises checks this first.
        api.redirect.canRedirect = () => false;
        api.rules = {
          wasExecuted: (ruleId) => executedRules.indexOf(StringOf(ruleId)) !== -1,
        };
        api.authentication = unsupportedNamespace('authentication', [
          'challengeWith',
          'challengeWithAny',
          'enrollWith',
          'enrollWithAny',
          'recordMethod',
          'setPrimaryUser',
        ]);
        api.session = unsupportedNamespace('session', ['revoke', 'setExpiresAt', 'setIdleExpiresAt', 'setMetadata', 'deleteMetadata', 'evictMetadata']);
        api.refreshToken = unsupportedNamespace('refreshToken', ['revoke', 'setExpiresAt', 'setIdleExpiresAt', 'setMetadata', 'deleteMetadata']);
        api.transaction = unsupportedNamespace('transaction', ['setMetadata', 'addTargetScope', 'removeTargetScope', 'setTargetScopes', 'clearTargetScopes']);
        api.prompt = unsupportedNamespace('prompt', ['render']);
        api.samlResponse = unsupportedNamespace('samlResponse', ['setAttribute']);
        break;
      case 'credentials-exchange':
        api.access = {
          deny: chain(function (code, reason) {
            const named = StringOf(code);
            if (named !== 'invalid_scope' && named !== 'invalid_request' && named !== 'server_error') {
              throw new TypeErrorClass(
                'api.access.deny: the code must be one of invalid_scope, invalid_request, server_error (got ' +
                  stringify(named) +
                  ')'
              );
            }
            deny(named, reason);
          }),
        };
        api.accessToken = {
          setCustomClaim: setter(record.access_token_claims, 'api.accessToken.setCustomClaim'),
        };
        api.cache = cache;
        api.transaction = unsupportedNamespace('transaction', ['addTargetScope', 'removeTargetScope', 'setTargetScopes', 'clearTargetScopes']);
        break;
      case 'pre-user-registration':
        api.access = {
          deny: chain((reason, userMessage) => deny('access_denied', reason, userMessage)),
        };
        api.validation = {
          error: chain((code, message) => deny(StringOf(code), message)),
        };
        api.user = {
          setAppMetadata: metadataSetter(record.app_metadata, 'api.user.setAppMetadata'),
          setUserMetadata: metadataSetter(record.user_metadata, 'api.user.setUserMetadata'),
        };
        api.cache = cache;
        break;
      default:
        api.cache = cache;
    }
    return api;
  }

  function settle(result) {
    promiseThen.call(
      promiseResolve(result),
      () => {
        state.settled = true;
      },
      (error) => {
        state.settled = true;
        state.error = describeError(error);
      }
    );
  }

  return {
    // Runs the module's top level, then calls its handler; a returned promise settles
    // while the engine drains the job queue.
    output: output,

    startAction(trigger, handlerName, eventJson, secretsJson, executedRulesJson, cacheJson, moduleFunction) {
      try {
        const entries = parse(cacheJson);
        for (const name of Object.keys(entries)) state.cache[name] = entries[name];
        const event = parse(eventJson);
        event.secrets = parse(secretsJson);
        const module = { exports: {} };
        moduleFunction.call(module.exports, module.exports, module, require);
        const handler = module.exports === null || module.exports === undefined
          ? undefined
          : module.exports[handlerName];
        if (typeof handler !== 'function') {
          throw new ErrorClass('the action does not export ' + handlerName);
        }
        const api = buildApi(trigger, state.record, parse(executedRulesJson));
        settle(handler(event, api));
      } catch (error) {
        state.settled = true;
        state.error = describeError(error);
      }
    },

    // Calls a legacy Rule `function (user, context, callback)`.
    startRule(userJson, contextJson, configurationJson, ruleFunction) {
      try {
        defineProperty(globalThis, 'UnauthorizedError', { value: UnauthorizedError, writable: true, configurable: true });
        globalThis.configuration = parse(configurationJson);
        const user = parse(userJson);
        const context = parse(contextJson);
        const callback = function (error, nextUser, nextContext) {
          if (state.settled) return;
          state.settled = true;
          if (error) {
            if (error instanceof UnauthorizedError || (error && error.name === 'UnauthorizedError')) {
              state.record.denied = {
                code: 'access_denied',
                reason: StringOf(error.message === undefined ? '' : error.message),
                user_message: null,
              };
            } else {
              state.error = describeError(error);
            }
            return;
          }
          try {
            state.rule = {
              user: parse(toJson('callback: user', nextUser === undefined ? user : nextUser)),
              context: parse(toJson('callback: context', nextContext === undefined ? context : nextContext)),
            };
          } catch (serialiseError) {
            state.error = describeError(serialiseError);
          }
        };
        if (typeof ruleFunction !== 'function') {
          throw new ErrorClass('the rule is not a function (user, context, callback)');
        }
        const result = ruleFunction(user, context, callback);
        // An async rule that rejects before calling back fails the rule.
        if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
          promiseThen.call(promiseResolve(result), undefined, (error) => {
            if (!state.settled) {
              state.settled = true;
              state.error = describeError(error);
            }
          });
        }
      } catch (error) {
        if (!state.settled) {
          state.settled = true;
          state.error = describeError(error);
        }
      }
    },

    // What the execution produced, as JSON for Rust.
    finish() {
      const report = {
        settled: state.settled,
        error: state.error,
        record: null,
        rule: null,
        cache_ops: state.cacheOps,
      };
      if (state.error === null) {
        report.record = state.record;
        report.rule = state.rule;
      }
      try {
        return stringify(report);
      } catch (error) {
        return stringify({ settled: true, error: describeError(error), record: null, rule: null, cache_ops: [] });
      }
    },
  };
})
