/**
 * Everything the case detail shows, fetched over REST and re-fetched when
 * the case changes (socket `case` event bumps updatedAt) and, while a worker
 * is out, every few seconds for the path.
 */
import { useCallback, useEffect, useState } from 'react';
import { ApiError, get, items } from '../api/client';
import type { CaseDetail, Candidate, Clip, DispatchRecord, LinkedCamera } from '../api/types';
export type { DispatchRecord };
import { cases } from '../store/data';
import { useEntity } from '../store/entities';

export function useCaseData(id: string) {
  const summary = useEntity(cases, id);
  const [detail, setDetail] = useState<CaseDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [dispatches, setDispatches] = useState<DispatchRecord[]>([]);
  const [candidates, setCandidates] = useState<Candidate[] | null>(null);
  const [cameras, setCameras] = useState<LinkedCamera[]>([]);
  const [clips, setClips] = useState<Clip[]>([]);
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);

  useEffect(() => {
    let live = true;
    get<CaseDetail>(`/cases/${encodeURIComponent(id)}`)
      .then((d) => {
        if (!live) return;
        setDetail(d);
        setError(null);
        cases.upsert(d);
      })
      .catch((e: unknown) => live && setError(e instanceof ApiError ? e.code : String(e)));
    items<DispatchRecord>(`/cases/${encodeURIComponent(id)}/dispatches`).then((r) => live && setDispatches(r.items)).catch(() => undefined);
    items<LinkedCamera>(`/linkage/${encodeURIComponent(id)}`).then((r) => live && setCameras(r.items)).catch(() => undefined);
    items<Clip>('/clips', { caseId: id }).then((r) => live && setClips(r.items)).catch(() => undefined);
    return () => {
      live = false;
    };
  }, [id, summary?.updatedAt, summary?.status, n]);

  const status = summary?.status ?? detail?.status;
  useEffect(() => {
    if (status !== 'registered') {
      setCandidates(null);
      return;
    }
    let live = true;
    items<Candidate>(`/cases/${encodeURIComponent(id)}/candidates`, { limit: 8 })
      .then((r) => live && setCandidates(r.items))
      .catch(() => live && setCandidates([]));
    return () => {
      live = false;
    };
  }, [id, status, n]);

  // While a worker is on the way the path grows; poll it gently.
  useEffect(() => {
    if (!status || !['dispatched', 'accepted', 'on_scene'].includes(status)) return;
    const iv = setInterval(() => {
      items<DispatchRecord>(`/cases/${encodeURIComponent(id)}/dispatches`).then((r) => setDispatches(r.items)).catch(() => undefined);
    }, 5000);
    return () => clearInterval(iv);
  }, [id, status]);

  return { summary: summary ?? detail, detail, error, dispatches, candidates, cameras, clips, reload };
}
