/** Where an instance or process app finds its node's CStore and R1FS: Ratio1's variables, which `@ratio1/edge-sdk-ts` reads. */
export interface ServiceUrls {
  cstoreUrl: string
  r1fsUrl: string
}

export function servicesEnv(urls: ServiceUrls): Record<string, string> {
  return {EE_CHAINSTORE_API_URL: urls.cstoreUrl, CSTORE_API_URL: urls.cstoreUrl, EE_R1FS_API_URL: urls.r1fsUrl, R1FS_API_URL: urls.r1fsUrl}
}

/** The URLs an instance was given (what `servicesEnv` set; Ratio1's names first): undefined where none. */
export function serviceUrlsFromEnv(env: Record<string, string | undefined>): Partial<ServiceUrls> {
  const cstoreUrl = env.EE_CHAINSTORE_API_URL || env.CSTORE_API_URL
  const r1fsUrl = env.EE_R1FS_API_URL || env.R1FS_API_URL
  return {...(cstoreUrl ? {cstoreUrl} : {}), ...(r1fsUrl ? {r1fsUrl} : {})}
}
