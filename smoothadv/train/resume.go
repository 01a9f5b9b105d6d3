package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/smoothadv/smoothadv/internal/jsonerr"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

// record is what run.json says of a run.
type record struct {
	Config  *settings.Config `json:"config"`
	Threads int              `json:"threads"` // intra-op threads per process; 0 in older records
}

// recorded reads the settings of the run recorded in dir (run.json), or nil
// when there is no record (a folder the reference trained, or a new one).
func recorded(dir string) (*settings.Config, error) {
	rec, err := readRecord(dir)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.Config, nil
}

// readRecord reads run.json in dir; nil when there is none.
func readRecord(dir string) (*record, error) {
	path := filepath.Join(dir, settings.ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s is not a training record: %w", path, jsonerr.Describe(err))
	}
	if rec.Config == nil {
		return nil, fmt.Errorf("%s is not a training record: it has no config", path)
	}
	return &rec, nil
}

// checkResumable refuses to resume a run that its record (run.json) says was
// trained with other settings deciding what the checkpoint's weights mean. A
// directory without a record (one the reference trained) is not checked.
func checkResumable(cfg settings.Config) error {
	rec, err := recorded(cfg.OutDir)
	if err != nil || rec == nil {
		return errorf("resume: %w", err)
	}
	if diffs := settings.ChangedSettings(*rec, cfg); len(diffs) > 0 {
		return fmt.Errorf("resume %s: settings differ from the run's (recorded in %s): %s; resume with the run's settings or train into a new directory",
			cfg.OutDir, filepath.Join(cfg.OutDir, settings.ConfigFile), strings.Join(diffs, "; "))
	}
	return nil
}

// checkFresh refuses to train afresh into a directory that holds another
// run (its record's settings differ), whose checkpoint and log would be
// lost, unless cfg.Overwrite. The same run again is trained over, as the
// reference does.
func checkFresh(cfg settings.Config) error {
	if cfg.Overwrite {
		return nil
	}
	rec, err := recorded(cfg.OutDir)
	if err != nil || rec == nil {
		return err
	}
	if diffs := settings.ChangedSettings(*rec, cfg); len(diffs) > 0 {
		return fmt.Errorf("%s holds another run (recorded in %s): %s; train into a new directory, --resume it, or pass --overwrite to replace it",
			cfg.OutDir, filepath.Join(cfg.OutDir, settings.ConfigFile), strings.Join(diffs, "; "))
	}
	return nil
}

// clearOldRun removes what an earlier run left in dir that a fresh run
// would otherwise keep until its first epoch ends: its checkpoint (a resume
// after a kill in epoch 0 would continue those weights) and its pending log
// line.
func clearOldRun(dir string) error {
	for _, name := range []string{settings.CheckpointFile, trainlog.LastLineFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// errorf is fmt.Errorf, or nil for a nil err.
func errorf(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}
