import { useEffect, useState } from 'react';

/** Re-renders every `ms` (clocks, SLA countdowns, freshness). */
export function useTick(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const iv = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(iv);
  }, [ms]);
  return now;
}
