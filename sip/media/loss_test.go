package media

import "testing"

func TestLossCounter(t *testing.T) {
	tests := []struct {
		name string
		seqs []uint16
		want uint64
	}{
		{"in order", []uint16{10, 11, 12, 13}, 0},
		{"two lost", []uint16{10, 11, 14}, 2},
		{"wraps", []uint16{65534, 65535, 0, 2}, 1},
		{"duplicate end packets", []uint16{5, 6, 6, 6, 7}, 0},
		{"late packet", []uint16{5, 7, 6, 8}, 1},
		{"another stream", []uint16{5, 6, 30000, 30001}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l lossCounter
			var got uint64
			for _, s := range tt.seqs {
				got += l.next(s)
			}
			if got != tt.want {
				t.Errorf("lost %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStatsAddSumsDigitsBySource(t *testing.T) {
	var a, b Stats
	b.DigitsRFC4733, b.DigitsInfo, b.DigitsInband, b.PacketsLost = 1, 2, 3, 4
	b.SendLateness.Add(3e6)
	a.Add(&b)
	a.Add(&b)
	if a.DigitsRFC4733 != 2 || a.DigitsInfo != 4 || a.DigitsInband != 6 || a.PacketsLost != 8 {
		t.Errorf("sum %+v", a)
	}
	if a.SendLateness.Count() != 2 || a.SendLateness.Sum() != 6e6 {
		t.Errorf("lateness count %d sum %v", a.SendLateness.Count(), a.SendLateness.Sum())
	}
}
