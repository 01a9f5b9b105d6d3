package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// checkResumable refuses to resume a run that its record (run.json) says was
// trained with other settings deciding what the checkpoint's weights mean. A
// directory without a record (one the reference trained) is not checked.
func checkResumable(cfg settings.Config) error {
	path := filepath.Join(cfg.OutDir, settings.ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var rec struct {
		Config *settings.Config `json:"config"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("resume: %s is not a training record: %w", path, err)
	}
	if rec.Config == nil {
		return fmt.Errorf("resume: %s is not a training record: it has no config", path)
	}
	if diffs := settings.ChangedSettings(*rec.Config, cfg); len(diffs) > 0 {
		return fmt.Errorf("resume %s: settings differ from the run's (recorded in %s): %s; resume with the run's settings or train into a new directory",
			cfg.OutDir, path, strings.Join(diffs, "; "))
	}
	return nil
}
