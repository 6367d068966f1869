// Provider rollup: the MX host name says who runs a domain's mail (a Google Workspace domain is
// "google" whatever its name). Used as a bounded metrics label and, later, by shaping rules.
const PROVIDERS: [RegExp, string][] = [
  [/(^|\.)(google\.com|googlemail\.com)$/, 'google'],
  [/(^|\.)(outlook\.com|hotmail\.com|protection\.outlook\.com)$/, 'microsoft'],
  [/(^|\.)(yahoodns\.net|yahoo\.com)$/, 'yahoo'],
  [/(^|\.)icloud\.com$/, 'apple'],
  [/(^|\.)(pphosted\.com|ppe-hosted\.com)$/, 'proofpoint'],
  [/(^|\.)mimecast\.com$/, 'mimecast'],
];

export function providerOf(mxHost: string | undefined): string {
  if (!mxHost) return 'none';
  const h = mxHost.toLowerCase().replace(/\.$/, '');
  for (const [re, name] of PROVIDERS) if (re.test(h)) return name;
  return 'other';
}
