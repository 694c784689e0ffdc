package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
)

func TestResponseIsAbout200Bytes(t *testing.T) {
	if n := proto.Size(Response); n < 180 || n > 220 {
		t.Errorf("response is %d bytes, want about 200", n)
	}
}

// TestServersAnswerAndExport starts each server with its own sinks and
// checks that it answers the benchmark call, that golden refuses a call
// without a token, and that the instrumented servers really ship spans
// and, where configured, GELF messages.
func TestServersAnswerAndExport(t *testing.T) {
	certs, err := EnsureCerts(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := certs.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Successful calls' access lines on stdout: golden's sample is 1
	// except golden-nolog's (0); the peer logs every call (no token
	// check: the tokenless one succeeds too), peer-nolog none.
	wantOKLines := map[string]int{Golden: 4, GoldenNoGELF: 4, Peer: 5}
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			otlp, err := StartOTLPSink()
			if err != nil {
				t.Fatal(err)
			}
			defer otlp.Close()
			gelf, err := StartGELFSink()
			if err != nil {
				t.Fatal(err)
			}
			defer gelf.Close()
			stdout, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
			if err != nil {
				t.Fatal(err)
			}
			defer stdout.Close()
			srv, err := Start(name, certs, Sinks{OTLPAddr: otlp.Addr(), GELFAddr: gelf.Addr(), Stdout: stdout})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			clients, err := Dial(srv.Addr(), certs, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer clients.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := range 4 {
				resp, err := clients.Get(i).GetUser(CallContext(ctx, token), Request())
				if err != nil {
					t.Fatalf("GetUser: %v", err)
				}
				if !proto.Equal(resp, Response) {
					t.Fatalf("GetUser answered %v, want %v", resp, Response)
				}
			}
			_, err = clients.Get(0).GetUser(ctx, Request())
			golden := strings.HasPrefix(name, Golden)
			if golden && status.Code(err) != codes.Unauthenticated {
				t.Errorf("GetUser without a token: got %v, want Unauthenticated", err)
			}
			if !golden && err != nil {
				t.Errorf("GetUser without a token: %v, want success (no token check)", err)
			}
			// Close flushes the spans and the GELF queue.
			if err := srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			logged, err := os.ReadFile(stdout.Name())
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(logged), `"grpc.code":"OK"`); got != wantOKLines[name] {
				t.Errorf("%d access lines of successful calls on stdout, want %d", got, wantOKLines[name])
			}
			wantSpans := name != Bare
			if got := otlp.Spans(); (got > 0) != wantSpans {
				t.Errorf("%d spans exported, want spans: %v", got, wantSpans)
			}
			wantGELF := name == Golden || name == GoldenNoLog // golden-nolog ships its start and stop lines
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, err := gelf.Stats()
				if err != nil {
					t.Fatal(err)
				}
				if wantGELF && st.Datagrams == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond) // UDP delivery is asynchronous
					continue
				}
				if (st.Datagrams > 0) != wantGELF {
					t.Errorf("%d GELF datagrams received, want some: %v", st.Datagrams, wantGELF)
				}
				break
			}
		})
	}
}

func TestStartUnknownServer(t *testing.T) {
	if _, err := Start("nginx", Certs{}, Sinks{}); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("Start(nginx) = %v, want an error naming it", err)
	}
}

func TestParseBenchOutput(t *testing.T) {
	out := `goos: linux
BenchmarkUnaryRPC/bare-2   	   90352	     26764 ns/op	     47457 cpu-ns/op	   10692 B/op	     149 allocs/op
BenchmarkUnaryRPC/bare-2   	   90000	     28000 ns/op	     48000 cpu-ns/op	   10700 B/op	     149 allocs/op
BenchmarkUnaryRPC/bare-2   	   91000	     27000 ns/op	     47000 cpu-ns/op	   10600 B/op	     149 allocs/op
BenchmarkLogCall/udp-down-2	  500000	      2000 ns/op	         0.9000 dropped/op	    1000 B/op	      20 allocs/op
--- BENCH: BenchmarkUnaryRPC
    bench_test.go:1: spans go to jaeger
PASS
`
	lines, err := ParseBenchOutput(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	groups := GroupBench(lines)
	if len(groups) != 2 || groups[0].Name != "BenchmarkUnaryRPC/bare" || len(groups[0].Runs) != 3 {
		t.Fatalf("groups = %+v", groups)
	}
	if m := groups[0].Median("ns/op"); m != 27000 {
		t.Errorf("median ns/op = %v, want 27000", m)
	}
	if lo, hi := groups[0].Range("ns/op"); lo != 26764 || hi != 28000 {
		t.Errorf("range = %v..%v", lo, hi)
	}
	if d := groups[1].Median("dropped/op"); d != 0.9 {
		t.Errorf("dropped/op = %v, want 0.9", d)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 1-4 = %v, want 2.5", m)
	}
	if m := Median(nil); !math.IsNaN(m) {
		t.Errorf("median of nothing = %v, want NaN", m)
	}
}

func TestParseGHZ(t *testing.T) {
	report := `{"count":1000,"total":2000000000,"average":3000000,"rps":500.5,
	"latencyDistribution":[{"percentage":50,"latency":2000000},{"percentage":90,"latency":4000000},{"percentage":99,"latency":9000000}],
	"statusCodeDistribution":{"OK":990,"Unavailable":10},"errorDistribution":{"rpc error: code = Unavailable":10},"details":[]}`
	r, err := ParseGHZ([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if r.Count != 1000 || r.RPS != 500.5 || r.P50 != 2*time.Millisecond || r.P99 != 9*time.Millisecond || r.OK() != 990 || r.Failed() != 10 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := ParseGHZ([]byte(`{"count":0}`)); err == nil {
		t.Error("a report without calls was accepted")
	}
	if _, err := ParseGHZ([]byte(`not json`)); err == nil {
		t.Error("a report that is not JSON was accepted")
	}
}

func TestGHZArgsCarryTLSAndMetadata(t *testing.T) {
	o := GHZOptions{Addr: "127.0.0.1:1", Protoset: "u.protoset", Call: "a.B.C", Data: "{}",
		Files: TLSFiles{CA: "ca", Cert: "c", Key: "k"}, ServerName: "user",
		Metadata: map[string]string{"authorization": "Bearer x"}, Connections: 4, Concurrency: 32, Duration: time.Second}
	args, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"--protoset u.protoset", "--cacert ca", "--cert c", "--key k", "--cname user", "--connections 4", "--concurrency 32", `--metadata {"authorization":"Bearer x"}`} {
		if !strings.Contains(joined, want) {
			t.Errorf("args %q lack %q", joined, want)
		}
	}
	if args[len(args)-1] != o.Addr {
		t.Errorf("last argument is %q, want the address", args[len(args)-1])
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if m.RSS == 0 || m.HWM < m.RSS {
		t.Errorf("memory %+v: want RSS > 0 and HWM >= RSS", m)
	}
	s := SampleRSS(map[string]int{"self": os.Getpid()}, 10*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	stats, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if st := stats["self"]; st.Samples < 2 || st.Min == 0 || st.Max < st.Min || st.Mean() == 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("ReadMemory(-1) succeeded")
	}
}

func TestReceiverSpans(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# HELP otelcol_receiver_accepted_spans_total x
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 120
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 3
otelcol_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 2
otelcol_exporter_sent_spans_total{exporter="x"} 999
`))
	}))
	defer srv.Close()
	acc, ref, err := ReceiverSpans(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if acc != 123 || ref != 2 {
		t.Errorf("accepted %v refused %v, want 123 and 2", acc, ref)
	}
}

func TestCollectorMetricsSum(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# TYPE otelcol_processor_tail_sampling_count_traces_sampled counter
otelcol_processor_tail_sampling_count_traces_sampled{policy="errors",sampled="false"} 300
otelcol_processor_tail_sampling_count_traces_sampled{policy="errors",sampled="true"} 20
otelcol_processor_tail_sampling_count_traces_sampled{policy="sample",sampled="true"} 31
# TYPE otelcol_processor_tail_sampling_sampling_traces_on_memory gauge
otelcol_processor_tail_sampling_sampling_traces_on_memory 7
`))
	}))
	defer srv.Close()
	m, err := ScrapeCollector(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	const sampled = "otelcol_processor_tail_sampling_count_traces_sampled"
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{sampled, nil, 351},
		{sampled, []string{"sampled", "true"}, 51},
		{sampled, []string{"policy", "errors", "sampled", "true"}, 20},
		{sampled, []string{"policy", "slow"}, 0},
		{"otelcol_processor_tail_sampling_sampling_traces_on_memory", nil, 7},
		{"absent", nil, 0},
	} {
		if got := m.Sum(c.name, c.match...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	srv.Close()
	if _, err := ScrapeCollector(srv.URL); err == nil {
		t.Error("a stopped server scraped")
	}
}

func TestReadCPU(t *testing.T) {
	before, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel's 10 ms ticks show it.
	deadline := time.Now().Add(5 * time.Second)
	after := before
	for after <= before && time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			_ = fmt.Sprint(i)
		}
		if after, err = ReadCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Errorf("CPU time did not grow: %v then %v", before, after)
	}
	if _, err := ReadCPU(-1); err == nil {
		t.Error("ReadCPU(-1) succeeded")
	}
}

func TestTableAndNumbers(t *testing.T) {
	tb := Table{Header: []string{"a", "b"}, Rows: [][]string{{"x|y", "1"}}, Right: map[int]bool{1: true}}
	want := "| a | b |\n|---|---:|\n| x\\|y | 1 |\n"
	if got := tb.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	for _, c := range []struct {
		x    float64
		prec int
		want string
	}{{1234567.891, 1, "1,234,567.9"}, {-1234, 0, "-1,234"}, {12, 2, "12.00"}} {
		if got := Num(c.x, c.prec); got != c.want {
			t.Errorf("Num(%v, %d) = %q, want %q", c.x, c.prec, got, c.want)
		}
	}
	if got := Ratio(3, 2); got != "1.50×" {
		t.Errorf("Ratio = %q", got)
	}
	if got := Ratio(3, 0); got != "n/a" {
		t.Errorf("Ratio(3, 0) = %q", got)
	}
}

// TestWriteProtoset: the set holds the user contract with its imports
// first, and reads back with the debug_redact options ghz's parser lacks.
func TestWriteProtoset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.protoset")
	if err := WriteProtoset(path, userv1.File_golden_user_v1_user_proto); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("the set does not stand alone: %v", err)
	}
	d, err := files.FindDescriptorByName("golden.user.v1.UserService.GetUser")
	if err != nil {
		t.Fatal(err)
	}
	if d.(protoreflect.MethodDescriptor).Input().FullName() != "golden.user.v1.GetUserRequest" {
		t.Errorf("GetUser takes %s", d.(protoreflect.MethodDescriptor).Input().FullName())
	}
	pw, err := files.FindDescriptorByName("golden.user.v1.CreateUserRequest.password")
	if err != nil {
		t.Fatal(err)
	}
	if !pw.Options().(*descriptorpb.FieldOptions).GetDebugRedact() {
		t.Error("password lost its debug_redact option")
	}
	if last := set.File[len(set.File)-1].GetName(); last != "golden/user/v1/user.proto" {
		t.Errorf("last file %s, want the contract after its imports", last)
	}
}

func TestGELFSink(t *testing.T) {
	s, err := StartGELFSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Pid() == os.Getpid() {
		t.Fatal("the sink runs in this process, want a process of its own")
	}
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{`{"a":1}`, `{"bb":2}`} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	want := GELFSinkStats{Datagrams: 2, Bytes: 15}
	var got GELFSinkStats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = s.Stats(); err != nil {
			t.Fatal(err)
		}
		if got == want {
			break
		}
	}
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Stats(); err == nil {
		t.Error("Stats after Close succeeded, want an error")
	}
}
