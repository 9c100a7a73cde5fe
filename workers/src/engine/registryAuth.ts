/** What the engine sends a registry (X-Registry-Auth): here, a bearer token minted for one repository. */
export type RegistryAuth = { registrytoken: string };
