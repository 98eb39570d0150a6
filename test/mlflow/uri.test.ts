// The tracking URI's normal form (src/mlflow/uri.ts) is what the client sends to and what run
// folders record; exp status reads it without making a client (it used to make a whole one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MlflowClient, MlflowError } from '../../src/mlflow/client.js';
import { normalTrackingUri, parseTrackingUri } from '../../src/mlflow/uri.js';

test('a tracking URI loses its credentials and trailing slashes, as the client stores it', () => {
  assert.deepEqual(parseTrackingUri('http://al%40ice:p%3Ass@mlflow.example:5000/base//'), {
    uri: 'http://mlflow.example:5000/base',
    username: 'al@ice',
    password: 'p:ss',
  });
  for (const raw of ['http://127.0.0.1:5000/', 'https://u:p@host/x/', 'http://host'])
    assert.equal(normalTrackingUri(raw), new MlflowClient({ uri: raw }).uri, raw);
});

test('a tracking URI that is not http(s) is MLFLOW_CONFIG, from the pure function and the client alike', () => {
  for (const raw of ['file:///tmp/mlruns', 'databricks', '']) {
    assert.throws(
      () => parseTrackingUri(raw),
      (e: unknown) => e instanceof MlflowError && e.code === 'MLFLOW_CONFIG' && e.message.includes('not an http(s) URL'),
    );
    assert.throws(
      () => new MlflowClient({ uri: raw }),
      (e: unknown) => e instanceof MlflowError && e.code === 'MLFLOW_CONFIG',
    );
  }
});
