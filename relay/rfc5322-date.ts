// A date as RFC 5322 writes it (`Mon, 07 Dec 2026 12:25:26 +0000`), for trace headers and
// delivery reports. The trace header's date changes once a second, and formatting it cost ~1 µs
// a message: the last second's text is kept.
let last = { second: NaN, text: '' };

export function rfc5322Date(date: Date | number): string {
  const ms = typeof date === 'number' ? date : date.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== last.second) last = { second, text: new Date(ms).toUTCString().replace('GMT', '+0000') };
  return last.text;
}
