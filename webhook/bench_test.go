package webhook

import "testing"

// BenchmarkMutate is the mutation alone for a typical IRSA pod (the admission benchmark of issue
// 17, with the HTTP round trip, is separate).
func BenchmarkMutate(b *testing.B) {
	pod := testPod(withEnv("LOG_LEVEL", "info"))
	sa := testSA("eks.amazonaws.com/role-arn", testARN)
	cfg := Config{Region: "eu-west-1", RegionalSTS: true}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Mutate(pod, sa, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.PatchJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
