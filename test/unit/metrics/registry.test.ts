/**
 * The metrics registry's text format, checked against the test's own strict parser and
 * exact expected text; the metrics_listen rule (loopback unless written out); and the
 * listener's answers on a real loopback socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from '../../../src/metrics/registry.js';
import { LoftMetrics } from '../../../src/metrics/loft-metrics.js';
import { startMetricsServer } from '../../../src/metrics/server.js';
import { parseListen } from '../../../src/config/listen.js';
import { LoftError } from '../../../src/util/errors.js';
import { parsePrometheusText, sampleValue } from '../../support/prom-parse.js';

test('counters, gauges and histograms render in the text format, labels escaped', () => {
  const r = new Registry();
  const c = r.add(new Counter('x_total', 'Things.\nTwo lines \\ here.', ['op']));
  c.inc({ op: 'a"b\\c\nd' }, 2);
  c.inc({ op: 'plain' });
  r.add(new Gauge('g', 'A gauge.', () => 1.5));
  const h = r.add(new Histogram('h_seconds', 'Latency.', [0.1, 1]));
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  assert.equal(
    r.render(),
    [
      '# HELP x_total Things.\\nTwo lines \\\\ here.',
      '# TYPE x_total counter',
      'x_total{op="a\\"b\\\\c\\nd"} 2',
      'x_total{op="plain"} 1',
      '# HELP g A gauge.',
      '# TYPE g gauge',
      'g 1.5',
      '# HELP h_seconds Latency.',
      '# TYPE h_seconds histogram',
      'h_seconds_bucket{le="0.1"} 1',
      'h_seconds_bucket{le="1"} 2',
      'h_seconds_bucket{le="+Inf"} 3',
      'h_seconds_sum 5.55',
      'h_seconds_count 3',
      '',
    ].join('\n'),
  );
  const parsed = parsePrometheusText(r.render());
  assert.equal(sampleValue(parsed, 'x_total', { op: 'a"b\\c\nd' }), 2);
  assert.throws(() => c.inc({ op: 'x' }, -1), /only goes up/);
  assert.throws(() => c.inc({}), /takes labels \[op\]/);
  assert.throws(() => r.add(new Counter('x_total', 'again')), /registered twice/);
  assert.throws(() => new Counter('bad-name', 'x'), /invalid metric name/);
});

test('LoftMetrics counts a path once published, with the sizes it was stored with', () => {
  const m = new LoftMetrics(() => 10_000);
  m.addQueueGauges({ pending: () => 2, parked: () => 1, oldestPendingAt: () => 4_000 });
  m.onPushEvent({ type: 'path-stored', path: '/p', narSize: 100, fileSize: 40, ms: 250 });
  m.onPushEvent({ type: 'path-stored', path: '/q', narSize: 7, fileSize: 5, ms: 10 });
  m.onPushEvent({ type: 'path-published', path: '/p' });
  m.onPushEvent({
    type: 'path-failed',
    path: '/q',
    error: new LoftError('NAR_MISMATCH', 'work', 'x'),
  });
  m.onS3Request('PutObject', 'ok');
  m.onS3Request('PutObject', '503');
  m.onPrune(new Date(2_000_000), 1234);
  const p = parsePrometheusText(m.registry.render());
  assert.equal(sampleValue(p, 'loft_uploaded_paths_total'), 1);
  assert.equal(sampleValue(p, 'loft_uploaded_nar_bytes_total'), 100);
  assert.equal(sampleValue(p, 'loft_uploaded_file_bytes_total'), 40);
  assert.equal(sampleValue(p, 'loft_upload_failures_total', { code: 'NAR_MISMATCH' }), 1);
  assert.equal(sampleValue(p, 'loft_upload_duration_seconds_count'), 2);
  assert.equal(
    sampleValue(p, 'loft_s3_requests_total', { operation: 'PutObject', status: '503' }),
    1,
  );
  assert.equal(sampleValue(p, 'loft_queue_pending_paths'), 2);
  assert.equal(sampleValue(p, 'loft_queue_parked_paths'), 1);
  assert.equal(sampleValue(p, 'loft_queue_oldest_pending_age_seconds'), 6);
  assert.equal(sampleValue(p, 'loft_prune_last_run_timestamp_seconds'), 2000);
  assert.equal(sampleValue(p, 'loft_prune_last_freed_bytes'), 1234);
});

test('metrics_listen: a bare port is loopback; other interfaces only when written out', () => {
  assert.deepEqual(parseListen('9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListen(':9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 });
  assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
  assert.deepEqual(parseListen('metrics.lan:80'), { host: 'metrics.lan', port: 80 });
  assert.match(String(parseListen('127.0.0.1')), /must be "PORT"/);
  assert.match(String(parseListen('127.0.0.1:99999')), /invalid port/);
  assert.match(String(parseListen('a b:1')), /invalid host/);
  assert.match(String(parseListen('::1:9')), /must be/);
});

test('the listener serves /metrics on loopback, 404 elsewhere, 405 for POST', async () => {
  const r = new Registry();
  r.add(new Counter('up_total', 'x')).inc();
  const s = await startMetricsServer({ host: '127.0.0.1', port: 0 }, r);
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const ok = await fetch(s.url);
    assert.equal(ok.status, 200);
    assert.equal(sampleValue(parsePrometheusText(await ok.text()), 'up_total'), 1);
    assert.equal((await fetch(s.url.replace('/metrics', '/'))).status, 404);
    assert.equal((await fetch(s.url, { method: 'POST' })).status, 405);
    // A taken port is a clear environment error.
    const port = Number(new URL(s.url).port);
    await assert.rejects(startMetricsServer({ host: '127.0.0.1', port }, r), (e: unknown) => {
      assert.ok(
        e instanceof LoftError && e.code === 'METRICS_LISTEN_FAILED' && e.kind === 'environment',
      );
      assert.match(e.message, /EADDRINUSE/);
      return true;
    });
  } finally {
    await s.close();
  }
});
