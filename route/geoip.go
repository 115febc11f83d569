package route

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoIP reads a MaxMind MMDB country database (GeoLite2-Country, GeoIP2
// Country or City, or any database with the same country fields). The file
// is memory-mapped; lookups are safe for concurrent use.
type GeoIP struct {
	db *maxminddb.Reader
}

var _ CountryLocator = (*GeoIP)(nil)

// OpenGeoIP opens the database at path.
func OpenGeoIP(path string) (*GeoIP, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open geoip database: %w", err)
	}
	return &GeoIP{db: db}, nil
}

// geoRecord is the part of a MaxMind country record routing reads.
type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// Country implements CountryLocator: the country the address is in, or,
// when the database does not place it, the country it is registered to.
func (g *GeoIP) Country(ip netip.Addr) (string, error) {
	var rec geoRecord
	if err := g.db.Lookup(ip).Decode(&rec); err != nil {
		return "", fmt.Errorf("geoip lookup: %w", err)
	}
	if rec.Country.ISOCode != "" {
		return rec.Country.ISOCode, nil
	}
	return rec.RegisteredCountry.ISOCode, nil
}

// Close unmaps the database.
func (g *GeoIP) Close() error { return g.db.Close() }
