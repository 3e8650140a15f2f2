package podidentity

// withoutEnv keeps the client from reading AWS_ENDPOINT_URL_EKS_AUTH and
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, so tests do not depend on the developer's shell.
func withoutEnv(o *Options) { o.lookupEnv = func(string) (string, bool) { return "", false } }

// withEnv makes the client read its endpoint variables from env instead of the process environment.
func withEnv(env map[string]string) func(*Options) {
	return func(o *Options) {
		o.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
}
