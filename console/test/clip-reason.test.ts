/**
 * What a case's clip shows an officer when it is not simply ready: the
 * hub's reason codes in both languages, zh-CN first; an older hub's sentence
 * as it was sent.
 */
import { describe, expect, it } from 'vitest';
import { translate, type T } from '../src/i18n';
import { clipNote, clipReason } from '../src/views/format';

const zh: T = (key, params) => translate('zh', key, params);
const en: T = (key, params) => translate('en', key, params);

describe('clip reasons', () => {
  it('should translate every reason code a failed clip carries', () => {
    expect(clipReason(zh, 'RECORDER_LOST')).toBe('录制节点故障，已录画面随之丢失，其他节点接管时片段时段已过');
    expect(clipReason(en, 'RECORDER_LOST')).toMatch(/node recording it failed/);
    for (const code of ['CAMERA_UNAVAILABLE', 'NO_VIDEO', 'CUT_FAILED', 'INTERRUPTED']) {
      expect(clipReason(zh, code)).toMatch(/[\u3400-\u9fff]/);
      expect(clipReason(en, code)).not.toBe(code);
    }
    expect(zh('clip.failed', { reason: clipReason(zh, 'NO_VIDEO') })).toBe('视频片段未能生成：片段时段内摄像头没有画面');
  });

  it('should show a sentence of an older hub as it is, and nothing for a clip without a note', () => {
    expect(clipReason(en, 'no video from the camera in the clip window')).toBe('no video from the camera in the clip window');
    expect(clipReason(en, null)).toBe('');
    expect(clipNote(zh, null)).toBeNull();
    expect(clipNote(zh, undefined)).toBeNull();
    expect(clipNote(zh, 'INTERRUPTED')).toBe('录制时中枢停止或重启：片段可能缺少部分画面');
    expect(clipNote(en, 'RECORDER_LOST')).toMatch(/holds only what the node that took over recorded/);
  });
});
