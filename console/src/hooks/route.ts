/**
 * Hash routes (#/cases/123): the build uses relative asset paths, so
 * path-based routes would break asset URLs below `/`; hash routes work
 * wherever the hub serves the console.
 */
import { useSyncExternalStore } from 'react';

const subscribe = (l: () => void) => {
  window.addEventListener('hashchange', l);
  return () => window.removeEventListener('hashchange', l);
};

export function useRoute(): string[] {
  const hash = useSyncExternalStore(subscribe, () => location.hash);
  return parts(hash);
}

export function parts(hash: string): string[] {
  return hash.replace(/^#\/?/, '').split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent);
}

export function navigate(path: string): void {
  location.hash = `#/${path.replace(/^\//, '')}`;
}

export function query(): URLSearchParams {
  return new URLSearchParams(location.hash.split('?')[1] ?? '');
}
