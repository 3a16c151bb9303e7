package llama

import "testing"

// BenchmarkDecode measures one decode step (batch 1) of the runner's "tiny"
// shape at positions 32 to 287, and reports tokens per second.
func BenchmarkDecode(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			m := randomModel(b, threads)
			prompt := make([]int, 32)
			for i := range prompt {
				prompt[i] = i * 7
			}
			const steps = 256 // decode positions 32..287, then start over
			s, err := m.NewSession(1, len(prompt)+steps)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Forward(prompt); err != nil {
				b.Fatal(err)
			}
			tok := []int{3}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if s.Pos() == len(prompt)+steps {
					b.StopTimer()
					s.Reset()
					if _, err := s.Forward(prompt); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := s.Forward(tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrefill measures a 128-token prompt of the "tiny" shape.
func BenchmarkPrefill(b *testing.B) {
	m := randomModel(b, 2)
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = i * 3
	}
	s, err := m.NewSession(1, len(prompt))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		if _, err := s.Forward(prompt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tok/s")
}
