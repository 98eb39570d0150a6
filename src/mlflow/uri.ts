/**
 * A tracking URI as exp stores and sends it: pure, so a reader (exp status, the sink's state)
 * gets the same normal form the client uses without making a client.
 */
import { MlflowError } from './http.js';

export interface TrackingUri {
  /** The URL without credentials and without a trailing '/': what run folders record. */
  uri: string;
  /** user:password from the URL, decoded (fetch refuses URLs that carry them). */
  username?: string;
  password?: string;
}

/** Splits a tracking URI into its normal form and its credentials; anything but http(s) is MLFLOW_CONFIG. */
export function parseTrackingUri(raw: string): TrackingUri {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MlflowError({
      code: 'MLFLOW_CONFIG',
      route: 'client',
      message: `tracking URI '${raw}' is not an http(s) URL; exp talks to a tracking server (mlflow server) only`,
    });
  }
  const out: TrackingUri = { uri: '' };
  if (url.username || url.password) {
    out.username = decodeURIComponent(url.username);
    out.password = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
  }
  out.uri = url.toString().replace(/\/+$/, '');
  return out;
}

/** The normal form alone (see parseTrackingUri). */
export const normalTrackingUri = (raw: string): string => parseTrackingUri(raw).uri;
