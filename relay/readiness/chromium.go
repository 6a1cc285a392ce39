package readiness

import "os/exec"

// Chromium returns the path of Debian's chromium, or "" when it is not
// installed.
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// HeadlessArgs are the flags a headless Chromium runs the readiness page
// with where no one sits at it (tests, verify's lab): a fresh profile, no
// sandbox (root in a network namespace), nothing fetched from the network
// on its own, and audio allowed without a click (the page's test calls
// send a tone).
func HeadlessArgs(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars",
		"--user-data-dir=" + profile}
}
