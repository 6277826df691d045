package contacts_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
)

func TestContactsSearchFieldsAndCSV(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			owner := e.Login("owner@acme.test")
			agent := e.Login("agent1@acme.test")

			// Custom fields are typed; an attribute of the wrong type names its field.
			owner.Do("POST", "/api/v1/contact-fields", map[string]any{"key": "tier", "label": "等级", "type": "select", "options": []string{"gold", "silver"}}).Want(201)
			owner.Do("POST", "/api/v1/contact-fields", map[string]any{"key": "tier", "label": "again", "type": "text"}).Want(422)
			agent.Do("POST", "/api/v1/contact-fields", map[string]any{"key": "x", "label": "x", "type": "text"}).Want(403)
			bad := agent.Do("POST", "/api/v1/contacts", map[string]any{"name": "Bad", "attributes": map[string]any{"tier": "bronze"}}).Want(422).JSON()
			if f := bad["errors"].([]any)[0].(map[string]any)["field"]; f != "attributes.tier" {
				t.Fatalf("error names %v", f)
			}
			c := agent.Do("POST", "/api/v1/contacts", map[string]any{"name": "张伟", "company": "Haier",
				"attributes": map[string]any{"tier": "gold"}, "tags": []string{"VIP", " vip "},
				"identities": []map[string]string{{"kind": "email", "value": "Zhang.Wei@Example.com"}, {"kind": "phone", "value": "+86 138-0013-8000"}}}).Want(201).JSON()
			if len(c["tags"].([]any)) != 1 || c["tags"].([]any)[0] != "vip" {
				t.Fatalf("tags: %v", c["tags"])
			}
			// The same identity on another contact is refused, naming it.
			dup := agent.Do("POST", "/api/v1/contacts", map[string]any{"name": "Other",
				"identities": []map[string]string{{"kind": "email", "value": "zhang.wei@example.com"}}}).Want(422).JSON()
			if f := dup["errors"].([]any)[0].(map[string]any)["field"]; f != "identities[0]" {
				t.Fatalf("duplicate identity error names %v", f)
			}
			agent.Do("POST", "/api/v1/contacts", map[string]any{"name": "Phone", "identities": []map[string]string{{"kind": "phone", "value": "12345"}}}).Want(422)

			// Search by name, e-mail, phone in any common spelling, company, and tag.
			for _, q := range []string{"q=%E5%BC%A0", "q=zhang.wei%40example", "q=%2B86+138+0013+8000", "q=13800138000", "q=haier", "tag=VIP"} {
				items := agent.Do("GET", "/api/v1/contacts?"+q, nil).Want(200).Items()
				if len(items) != 1 || items[0]["id"] != c["id"] {
					t.Fatalf("search %s: %d results", q, len(items))
				}
			}
			if n := len(agent.Do("GET", "/api/v1/contacts?q=nobody", nil).Want(200).Items()); n != 0 {
				t.Fatalf("search nobody: %d", n)
			}

			// CSV import: good rows are kept, bad rows are reported by row and field, a known
			// e-mail updates its contact.
			in := "name,email,phone,company,tags,external_id\n" +
				"李娜,li.na@example.com,+8613900139000,Hisense,vip;new,crm-1\n" +
				"Broken,not-an-email,,,,\n" +
				"张伟 (updated),zhang.wei@example.com,,Haier Group,,\n" +
				",,,,,\n" +
				"\"=HYPERLINK(\"\"http://evil\"\")\",evil@example.com,,,,\n"
			res := owner.Do("POST", "/api/v1/contacts/import", in, "Content-Type", "text/csv").Want(200).JSON()
			if res["created"] != float64(2) || res["updated"] != float64(1) {
				t.Fatalf("import: %v", res)
			}
			errs := res["errors"].([]any)
			if len(errs) != 2 || errs[0].(map[string]any)["row"] != float64(3) || errs[0].(map[string]any)["field"] != "email" ||
				errs[1].(map[string]any)["row"] != float64(5) {
				t.Fatalf("row errors: %v", errs)
			}
			owner.Do("POST", "/api/v1/contacts/import", "nom,courriel\nx,y\n", "Content-Type", "text/csv").Want(422)
			if got := agent.Do("GET", "/api/v1/contacts/"+c["id"].(string), nil).Want(200).JSON(); got["name"] != "张伟 (updated)" || got["company"] != "Haier Group" {
				t.Fatalf("import did not update the known contact: %v", got)
			}
			agent.Do("GET", "/api/v1/contacts/export", nil).Want(403)
			exp := owner.Do("GET", "/api/v1/contacts/export", nil).Want(200)
			rows, err := csv.NewReader(strings.NewReader(string(exp.Body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string][]string{}
			for _, r := range rows[1:] {
				byName[r[1]] = r
			}
			if r := byName["李娜"]; r == nil || r[2] != "li.na@example.com" || r[3] != "+8613900139000" || r[6] != "new;vip" || r[7] != "crm-1" {
				t.Fatalf("exported row: %v (all: %v)", r, rows)
			}
			// A cell a customer could have written is defused for spreadsheets.
			if _, ok := byName[`'=HYPERLINK("http://evil")`]; !ok {
				t.Fatalf("formula not defused: %v", rows)
			}
		})
	}
}
