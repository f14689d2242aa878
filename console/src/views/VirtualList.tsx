/**
 * A scrolling list that mounts only the rows on screen (plus a few above and
 * below), so a board column with 10,000 open cases holds a few dozen DOM rows.
 * Rows may differ in height: each mounted row is measured and the total height
 * corrected as it scrolls (@tanstack/react-virtual).
 */
import { useVirtualizer } from '@tanstack/react-virtual';
import { cloneElement, useRef, type CSSProperties, type ReactElement, type Ref } from 'react';

export function VirtualList<T>({
  items,
  estimate,
  className,
  listClass,
  gap = 6,
  testId,
  rowKey,
  children,
}: {
  items: readonly T[];
  /** Estimated row height in px before measuring. */
  estimate: number;
  className?: string;
  listClass: string;
  gap?: number;
  testId?: string;
  rowKey: (item: T) => string;
  /** One row element (an `<li>`); it gets the ref, index and position. */
  children: (item: T) => ReactElement<{ ref?: Ref<HTMLElement>; style?: CSSProperties; 'data-index'?: number }>;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: items.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => estimate,
    getItemKey: (i) => rowKey(items[i]!),
    overscan: 6,
    gap,
  });
  return (
    <div ref={scrollRef} className={`vlist ${className ?? ''}`} data-testid={testId} data-count={items.length}>
      <ul className={listClass} style={{ height: v.getTotalSize(), position: 'relative', display: 'block' }}>
        {v.getVirtualItems().map((r) => (
          cloneElement(children(items[r.index]!), {
            key: r.key,
            ref: v.measureElement,
            'data-index': r.index,
            style: { position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${r.start}px)` },
          })
        ))}
      </ul>
    </div>
  );
}
