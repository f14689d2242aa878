/** The part of cli-progress the load mode uses (the package ships no types). */
declare module 'cli-progress' {
  interface Options {
    format?: string;
    hideCursor?: boolean;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
    noTTYOutput?: boolean;
    notTTYSchedule?: number;
    stream?: NodeJS.WritableStream;
  }
  class SingleBar {
    constructor(options: Options, preset?: unknown);
    start(total: number, value: number, payload?: Record<string, unknown>): void;
    update(value: number, payload?: Record<string, unknown>): void;
    stop(): void;
  }
  const Presets: { shades_classic: unknown; shades_grey: unknown; rect: unknown; legacy: unknown };
  const _default: { SingleBar: typeof SingleBar; Presets: typeof Presets };
  export default _default;
}
