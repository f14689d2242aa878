import { describe, expect, it } from 'vitest';
import { alarmTitle } from '../src/views/alarmTitle';

describe('alarmTitle', () => {
  it('should say a threshold breach as the incident with units, in zh and en', () => {
    const a = { rule: 'water-level', type: 'water_level_cm', message: 'water_level_cm 37 >= 30' };
    expect(alarmTitle(a, 'zh')).toBe('积水 37 cm ≥ 30 cm');
    expect(alarmTitle(a, 'en')).toBe('Flooding 37 cm ≥ 30 cm');
    expect(alarmTitle({ rule: 'gas', type: 'ch4_pct_lel', message: 'ch4_pct_lel 25 >= 20 for 30s' }, 'zh')).toBe('燃气泄漏 25 %LEL ≥ 20 %LEL');
  });

  it('should name events, camera alerts with their confidence, absence and correlation', () => {
    expect(alarmTitle({ rule: 'smoke-alarm', type: 'smoke_alarm', message: 'smoke_alarm' }, 'zh')).toBe('烟感报警');
    expect(alarmTitle({ rule: 'smoke-alarm', type: 'smoke_alarm', message: 'smoke_alarm' }, 'en')).toBe('Smoke alarm');
    expect(alarmTitle({ rule: 'camera-fire', type: 'fire', message: 'fire (87%)' }, 'zh')).toBe('视频发现火情 87%');
    expect(alarmTitle({ rule: 'device-offline', type: 'offline', message: 'no message for 600s' }, 'zh')).toBe('设备离线 10 分钟');
    expect(alarmTitle({ rule: 'device-offline', type: 'offline', message: 'no message for 600s' }, 'en')).toBe('Device offline for 10 min');
    expect(alarmTitle({ rule: 'fire-correlation', type: 'correlation', message: 'smoke_alarm + fire/smoke within 80 m and 12 s' }, 'zh')).toBe('烟感与视频联动确认火情');
  });

  it('should fall back to the hub message, then the rule id', () => {
    expect(alarmTitle({ rule: 'x', type: 'mystery', message: '摄像头离线: timeout' }, 'zh')).toBe('摄像头离线: timeout');
    expect(alarmTitle({ rule: 'x', type: 'mystery', message: '' }, 'en')).toBe('x');
  });
});
