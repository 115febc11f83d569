package media

// FrameSamples is the number of 8 kHz samples in one 20 ms packet; with
// G.711 it is also the number of payload bytes and the RTP timestamp step.
const FrameSamples = 160
