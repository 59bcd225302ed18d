"""The local binhost: Portage's binhost protocol over the catalog, bytes verified as they stream."""
