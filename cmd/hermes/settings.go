package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hermes-go/hermes/protocol"
)

// settingsFlags loads the settings file named by --config in args, if any,
// over the protocol defaults, and binds every setting to a flag of fs, so
// that flags given on the command line override the file.
func settingsFlags(fs *flag.FlagSet, args []string) (*protocol.Settings, error) {
	st := protocol.Defaults()
	if path := configArg(args); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		if st, err = protocol.ParseSettings(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	fs.String("config", "", "settings file (JSON or YAML, fields as in 'protocol.Settings'); flags override it")
	st.RegisterFlags(fs)
	return &st, nil
}

// configArg finds the value of --config before the flags are parsed.
func configArg(args []string) string {
	for i, a := range args {
		for _, name := range []string{"--config", "-config"} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}
