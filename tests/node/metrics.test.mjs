// `tessera serve --metrics-listen`: the scrape read by an independent parser of the Prometheus
// text format (npm parse-prometheus-text-format, ported from the Python client's parser, output
// shaped like prom2json), and the counters moving when tokens are asked for.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import { cli, startServer, tempDir } from './lib/tessera.mjs';

const API = 'https://metrics/api';

async function tokenRequest(baseUrl, { clientId, clientSecret }) {
  const response = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
      audience: API,
    }),
    signal: AbortSignal.timeout(10000),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('Prometheus metrics of tessera serve', () => {
  let tmp;
  let server;
  let worker;

  const scrape = async () => {
    const response = await fetch(server.metricsUrl, { signal: AbortSignal.timeout(10000) });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    return { text, families: parsePrometheusTextFormat(text) };
  };

  /** The value of one sample of a counter or gauge family (0 when absent). */
  const value = (families, name, labels = {}) => {
    const family = families.find((f) => f.name === name);
    const sample = family?.metrics.find((m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
      && Object.keys(m.labels ?? {}).length === Object.keys(labels).length);
    return sample ? Number(sample.value) : 0;
  };

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'Metrics API', '--identifier', API, '--scopes', 'read']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Worker', '--type', 'm2m']);
    worker = { clientId: app.client_id, clientSecret: app.client_secret };
    await cli(databaseUrl, ['grants', 'create', '--app', worker.clientId, '--api', API, '--scopes', 'read']);
    // Port 0: the address the server prints is the one it bound.
    server = await startServer({ databaseUrl, args: ['--metrics-listen', '127.0.0.1:0'] });
    assert.match(server.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  }, { timeout: 120000 });

  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  it('every line of the scrape parses, and every family has HELP and TYPE', async () => {
    const { text, families } = await scrape();
    assert.ok(families.length >= 10, text);
    const sampleLines = (name) => text.split('\n')
      .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));
    for (const family of families) {
      assert.ok(family.help, `${family.name} has HELP`);
      assert.ok(['COUNTER', 'GAUGE', 'HISTOGRAM'].includes(family.type), `${family.name}: ${family.type}`);
      assert.match(family.name, /^tessera_/);
      if (family.type === 'COUNTER') assert.match(family.name, /_total$/);
      if (family.type === 'HISTOGRAM') {
        // This parser folds a labelled histogram's series into one (a limitation of its
        // prom2json-style output; the Rust test checks them one by one): check what survives.
        for (const metric of family.metrics) {
          assert.ok('+Inf' in metric.buckets, `${family.name} has +Inf`);
          const counts = Object.values(metric.buckets).map(Number);
          assert.deepEqual([...counts].sort((a, b) => a - b), counts, 'cumulative buckets');
        }
        continue;
      }
      // Nothing skipped: one parsed sample per sample line of the family.
      assert.equal(family.metrics.length, sampleLines(family.name).length, family.name);
      for (const metric of family.metrics) {
        assert.ok(Number.isFinite(Number(metric.value)), `${family.name} ${metric.value}`);
      }
    }
    // Every sample line belongs to a family the parser returned.
    const names = families.map((f) => f.name);
    for (const line of text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) {
      const name = line.split(/[{ ]/)[0];
      assert.ok(names.some((n) => name === n || [`${n}_bucket`, `${n}_sum`, `${n}_count`].includes(name)), line);
    }
  });

  it('counts an issued token and an invalid_client', async () => {
    const before = (await scrape()).families;
    assert.equal(await tokenRequest(server.baseUrl, worker), 200);
    assert.equal(await tokenRequest(server.baseUrl, { ...worker, clientSecret: 'wrong' }), 401);
    const { families, text } = await scrape();
    const moved = (name, labels) => value(families, name, labels) - value(before, name, labels);
    assert.equal(moved('tessera_tokens_issued_total', { grant_type: 'client_credentials' }), 1, text);
    assert.equal(moved('tessera_token_errors_total', { error: 'invalid_client' }), 1, text);
    assert.equal(moved('tessera_http_requests_total', { route: '/oauth/token', method: 'POST', status: '200' }), 1, text);
    assert.equal(moved('tessera_http_requests_total', { route: '/oauth/token', method: 'POST', status: '401' }), 1, text);
    assert.match(text, /^tessera_http_request_duration_seconds_count\{route="\/oauth\/token"\} [1-9]/m);
    // Nothing about who asked.
    assert.ok(!text.includes(worker.clientId), 'no client id in the scrape');
  });

  it('is not served on the issuer\'s port', async () => {
    const response = await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(10000) });
    assert.equal(response.status, 404);
    await response.arrayBuffer();
  });
});
