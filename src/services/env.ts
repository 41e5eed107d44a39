/** Where an instance or process app finds its node's CStore and R1FS: Ratio1's variables, which `@ratio1/edge-sdk-ts` reads. */
export interface ServiceUrls {
  cstoreUrl: string
  r1fsUrl: string
}

export function servicesEnv(urls: ServiceUrls): Record<string, string> {
  return {EE_CHAINSTORE_API_URL: urls.cstoreUrl, CSTORE_API_URL: urls.cstoreUrl, EE_R1FS_API_URL: urls.r1fsUrl, R1FS_API_URL: urls.r1fsUrl}
}
