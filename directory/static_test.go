package directory_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/route"
)

// parser reads national numbers as German ones, as a gateway with
// verify.default_region DE does.
func parser() *route.Classifier {
	return route.NewClassifier(route.ClassifierOptions{DefaultRegion: "DE", CacheSize: -1})
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const aliceOID = "2b7c1a7e-5d3f-4a8b-9c0d-1e2f3a4b5c6d"

var alice = directory.User{ID: aliceOID, DisplayName: "Alice Example", Source: "static", Numbers: []directory.Number{
	{E164: "+4915123456789", Kind: directory.KindMobile},
	{E164: "+49301234567", Kind: directory.KindOffice},
}}

var bob = directory.User{ID: "bob@contoso.example", Source: "static", Numbers: []directory.Number{
	{E164: "+4917612345678", Kind: directory.KindMobile},
}}

const staticYAML = `# people whose phone is not in the directory
users:
  - oid: ` + aliceOID + `
    upn: alice@contoso.example
    username: alice
    display_name: Alice Example
    mobile: "+49 (0)151 2345 6789"
    office: [030 1234567, "+49 30 1234567"]
  - upn: bob@contoso.example
    mobile: ["0176 12345678"]
`

const staticCSV = "\xef\xbb\xbfoid,upn,username,display_name,mobile,office\n" +
	"# people whose phone is not in the directory\n" +
	aliceOID + ",alice@contoso.example,alice,Alice Example,+49 (0)151 2345 6789,030 1234567;+49 30 1234567\n" +
	",bob@contoso.example,,,0176 12345678,\n"

func TestStaticLookup(t *testing.T) {
	for _, file := range []struct{ name, body string }{{"people.yaml", staticYAML}, {"people.csv", staticCSV}} {
		t.Run(file.name, func(t *testing.T) {
			s, err := directory.NewStatic(directory.StaticConfig{File: writeFile(t, file.name, file.body)}, parser(), nil)
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				q    directory.Query
				want directory.User
			}{
				{"oid", directory.Query{OID: aliceOID}, alice},
				{"oid in capitals", directory.Query{OID: strings.ToUpper(aliceOID)}, alice},
				{"upn any case", directory.Query{UPN: "Alice@Contoso.Example"}, alice},
				{"username", directory.Query{Username: "alice"}, alice},
			}
			for _, tt := range tests {
				got, err := s.Lookup(context.Background(), tt.q)
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: Lookup(%+v) = %+v, %v; want %+v", tt.name, tt.q, got, err, tt.want)
				}
			}
			for _, q := range []directory.Query{{UPN: "carol@contoso.example"}, {Username: "bob"}, {},
				// An oid is the only key when given: the UPN may have passed
				// to someone else since.
				{OID: "00000000-0000-0000-0000-000000000000", UPN: "bob@contoso.example"},
				{OID: "00000000-0000-0000-0000-000000000000", UPN: "alice@contoso.example", Username: "alice"}} {
				if _, err := s.Lookup(context.Background(), q); !errors.Is(err, directory.ErrNotFound) {
					t.Errorf("Lookup(%+v) = %v, want ErrNotFound", q, err)
				}
			}
		})
	}
}

// TestStaticWithoutOIDs: a file that holds no oid cannot look one up, and
// finds people by the other keys a query gives.
func TestStaticWithoutOIDs(t *testing.T) {
	s, err := directory.NewStatic(directory.StaticConfig{File: writeFile(t, "people.yaml",
		"users:\n  - upn: bob@contoso.example\n    mobile: [\"0176 12345678\"]\n")}, parser(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := directory.Query{OID: aliceOID, UPN: "bob@contoso.example"}
	if got, err := s.Lookup(context.Background(), q); err != nil || !reflect.DeepEqual(got, bob) {
		t.Errorf("Lookup(%+v) = %+v, %v; want %+v", q, got, err, bob)
	}
}

func TestStaticRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, file, body string
		want             string // in the error, with the line
	}{
		{"yaml bad number", "p.yaml", "users:\n  - upn: a@x.example\n    mobile: \"+49 151\"\n", "line 2: mobile number"},
		{"yaml no key", "p.yaml", "users:\n  - upn: a@x.example\n    mobile: \"+4915123456789\"\n  - display_name: Nobody\n    mobile: \"+4915123456780\"\n", "line 4: needs an oid, upn or username"},
		{"yaml no number", "p.yaml", "users:\n  - upn: a@x.example\n", "line 2: needs a mobile or office number"},
		{"yaml misspelt field", "p.yaml", "users:\n  - upn: a@x.example\n    mobil: \"+4915123456789\"\n", `line 3: unknown field "mobil"`},
		{"yaml unknown top key", "p.yaml", "people: []\n", "people"},
		{"yaml duplicate upn", "p.yaml", "users:\n  - upn: a@x.example\n    mobile: \"+4915123456789\"\n  - upn: A@X.example\n    mobile: \"+4915123456780\"\n", `line 4: upn "A@X.example" appears twice`},
		{"yaml bad oid", "p.yaml", "users:\n  - oid: not-a-guid\n    mobile: \"+4915123456789\"\n", "line 2: oid"},
		{"yaml upn without domain", "p.yaml", "users:\n  - upn: alice\n    mobile: \"+4915123456789\"\n", "line 2: upn"},
		{"yaml empty", "p.yaml", "", "no users"},
		{"yaml not a list", "p.yaml", "users:\n  - just a string\n", "line 2: a user is a mapping"},
		{"csv bad number", "p.csv", "upn,mobile\na@x.example,+4915123456789\nb@x.example,12\n", "line 3: mobile number"},
		{"csv unknown column", "p.csv", "upn,phone\n", `line 1: unknown column "phone"`},
		{"csv duplicate username", "p.csv", "username,office\nbob,030 1234567\n\nBOB,030 1234568\n", `line 4: username "BOB" appears twice`},
		{"csv ragged", "p.csv", "upn,mobile\na@x.example,+4915123456789,extra\n", "line 2"},
		{"csv header only", "p.csv", "upn,mobile\n", "no users"},
		{"unknown extension", "p.txt", "upn,mobile\n", "cannot tell yaml from csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := directory.NewStatic(directory.StaticConfig{File: writeFile(t, tt.file, tt.body)}, parser(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestStaticReload swaps the table on a good file and keeps it on a bad one.
func TestStaticReload(t *testing.T) {
	path := writeFile(t, "people.yaml", staticYAML)
	s, err := directory.NewStatic(directory.StaticConfig{File: path}, parser(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := os.WriteFile(path, []byte("users:\n  - upn: carol@contoso.example\n    mobile: \"+4915199999999\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, directory.Query{UPN: "alice@contoso.example"}); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("alice after reload: %v, want ErrNotFound", err)
	}
	if u, err := s.Lookup(ctx, directory.Query{UPN: "carol@contoso.example"}); err != nil || u.Numbers[0].E164 != "+4915199999999" {
		t.Errorf("carol after reload: %+v, %v", u, err)
	}
	if err := os.WriteFile(path, []byte("users:\n  - upn: carol@contoso.example\n    mobile: \"12\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if _, err := s.Lookup(ctx, directory.Query{UPN: "carol@contoso.example"}); err != nil {
		t.Errorf("a failed reload lost the table: %v", err)
	}
}

// TestStaticUnquotedNumbers reads numbers as written even where YAML would
// see an integer (+49…, or 0151… that YAML 1.1 calls octal).
func TestStaticUnquotedNumbers(t *testing.T) {
	s, err := directory.NewStatic(directory.StaticConfig{File: writeFile(t, "p.yaml",
		"users:\n  - upn: a@x.example\n    mobile: [+4915123456789, 015123456780]\n    office: +49301234567\n")}, parser(), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Lookup(context.Background(), directory.Query{UPN: "a@x.example"})
	want := []directory.Number{{E164: "+4915123456789", Kind: directory.KindMobile},
		{E164: "+4915123456780", Kind: directory.KindMobile}, {E164: "+49301234567", Kind: directory.KindOffice}}
	if err != nil || !reflect.DeepEqual(u.Numbers, want) {
		t.Fatalf("%+v, %v; want %+v", u.Numbers, err, want)
	}
}
