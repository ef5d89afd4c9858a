package probe

import (
	"os"
	"testing"
)

// TestParseFixture reads ffprobe 5.1's full output for a phone-like recording: H.264 with frames
// dropped (r_frame_rate 30/1, avg_frame_rate 22/1) and 5.1 AAC at 48 kHz.
func TestParseFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/vfr-51.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{DurationSeconds: 2, FormatName: "mov,mp4,m4a,3gp,3g2,mj2", HasVideo: true, HasAudio: true,
		Width: 160, Height: 120, FrameRate: 22, NominalFrameRate: 30, VariableFrameRate: true,
		PixelFormat: "yuv444p", BitDepth: 8, VideoCodec: "h264",
		AudioCodec: "aac", AudioChannels: 6, AudioChannelLayout: "5.1", AudioSampleRate: 48000}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Dropped frames: encoded at the camera's 30, gaps repeated.
	if r := got.OutputFrameRate(30); r != 30 {
		t.Errorf("OutputFrameRate(30) = %v, want 30", r)
	}
}

// TestParse covers what the generated clips cannot: other muxers' ways of saying things, and values
// ffprobe leaves out or prints as "N/A".
func TestParse(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Result
	}{
		{
			// Browser MediaRecorder WebM: no frame rate in the file, so ffprobe offers the 1 ms clock.
			name: "webm without a frame rate",
			json: `{"format": {"format_name": "matroska,webm", "duration": "12.5"}, "streams": [
				{"codec_type": "video", "codec_name": "vp8", "width": 640, "height": 480, "pix_fmt": "yuv420p",
				 "field_order": "progressive", "r_frame_rate": "1000/1", "avg_frame_rate": "0/0"},
				{"codec_type": "audio", "codec_name": "opus", "channels": 1, "channel_layout": "mono",
				 "sample_rate": "48000", "r_frame_rate": "0/0", "avg_frame_rate": "0/0"}]}`,
			want: Result{DurationSeconds: 12.5, FormatName: "matroska,webm", HasVideo: true, HasAudio: true,
				Width: 640, Height: 480, FrameRate: 1000, NominalFrameRate: 1000, VariableFrameRate: true,
				PixelFormat: "yuv420p", BitDepth: 8, VideoCodec: "vp8",
				AudioCodec: "opus", AudioChannels: 1, AudioChannelLayout: "mono", AudioSampleRate: 48000},
		},
		{
			// Broadcast capture: interlaced bottom field first, 10-bit without bits_per_raw_sample,
			// 5.1 with side surrounds, durations only per stream.
			name: "interlaced 10-bit transport stream",
			json: `{"format": {"format_name": "mpegts", "duration": "N/A"}, "streams": [
				{"codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080,
				 "pix_fmt": "yuv422p10le", "field_order": "bb", "bits_per_raw_sample": "N/A",
				 "r_frame_rate": "30000/1001", "avg_frame_rate": "30000/1001", "duration": "59.96"},
				{"codec_type": "audio", "codec_name": "ac3", "channels": 6, "channel_layout": "5.1(side)",
				 "sample_rate": "48000", "duration": "60.01"}]}`,
			want: Result{DurationSeconds: 60.01, FormatName: "mpegts", HasVideo: true, HasAudio: true,
				Width: 1920, Height: 1080, FrameRate: 30000.0 / 1001, NominalFrameRate: 30000.0 / 1001,
				Interlaced: true, PixelFormat: "yuv422p10le", BitDepth: 10, VideoCodec: "hevc",
				AudioCodec: "ac3", AudioChannels: 6, AudioChannelLayout: "5.1(side)", AudioSampleRate: 48000},
		},
		{
			// A plain WAV names no layout; its cover art is not video.
			name: "wav with a still cover and no layout",
			json: `{"format": {"format_name": "wav", "duration": "3.0"}, "streams": [
				{"codec_type": "audio", "codec_name": "pcm_s16le", "channels": 2, "sample_rate": "44100"},
				{"codec_type": "video", "codec_name": "mjpeg", "width": 600, "height": 600,
				 "disposition": {"attached_pic": 1}}]}`,
			want: Result{DurationSeconds: 3, FormatName: "wav", HasAudio: true,
				AudioCodec: "pcm_s16le", AudioChannels: 2, AudioSampleRate: 44100},
		},
		{
			name: "field order unknown, nominal rate only",
			json: `{"format": {"format_name": "avi", "duration": "5"}, "streams": [
				{"codec_type": "video", "codec_name": "mpeg4", "width": 320, "height": 240, "pix_fmt": "yuv420p",
				 "field_order": "unknown", "bits_per_raw_sample": "8", "r_frame_rate": "15/1", "avg_frame_rate": "0/0"}]}`,
			want: Result{DurationSeconds: 5, FormatName: "avi", HasVideo: true, Width: 320, Height: 240,
				FrameRate: 15, NominalFrameRate: 15, PixelFormat: "yuv420p", BitDepth: 8, VideoCodec: "mpeg4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestBitDepth(t *testing.T) {
	for _, tt := range []struct {
		raw, pixFmt string
		want        int
	}{
		{"8", "yuv420p", 8},
		{"10", "yuv420p10le", 10},
		{"", "yuv420p", 8},
		{"N/A", "yuv444p10le", 10},
		{"", "yuv422p12be", 12},
		{"", "p010le", 10},
		{"", "gray16le", 16},
		{"", "rgb48le", 16},
		{"", "rgb565le", 8},
		{"", "yuvj420p", 8},
		{"", "", 8},
	} {
		if got := bitDepth(tt.raw, tt.pixFmt); got != tt.want {
			t.Errorf("bitDepth(%q, %q) = %d, want %d", tt.raw, tt.pixFmt, got, tt.want)
		}
	}
}
