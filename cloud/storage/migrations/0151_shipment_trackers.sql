-- A live tracker reporting through a gateway (its own sensor id, e.g. one read by a truck's
-- gateway over MQTT) is remounted at each shipment's transit location: the same sensor rides
-- many shipments, so a sensor id is no longer unique across shipment_loggers.
ALTER TABLE shipment_loggers DROP CONSTRAINT shipment_loggers_sensor_id_key;
CREATE INDEX shipment_loggers_sensor ON shipment_loggers (sensor_id);
