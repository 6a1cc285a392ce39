package diag_test

import (
	"os"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler/diag"
)

// TestREADMEListsEveryCode keeps the README's table of codes in step with the
// catalogue.
func TestREADMEListsEveryCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range diag.Catalogue {
		row := "| " + string(c.Code) + " | " + c.Name + " | " + strings.ReplaceAll(c.Explain, "|", "\\|") + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row for %s (%s); regenerate the table from diag.Catalogue", c.Code, c.Name)
		}
	}
}
