package panos

import "fmt"

// renderChangeXML renders a change script as XML API requests.
func renderChangeXML(steps []step, where place) ([]byte, error) {
	return nil, fmt.Errorf("the xml change form is not available yet; use the set form")
}
