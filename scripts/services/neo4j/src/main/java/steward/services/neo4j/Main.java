package steward.services.neo4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

/**
 * Steward's Neo4j test server: an embedded Neo4j Community DBMS with Bolt on 127.0.0.1, auth off.
 *
 * <p>Usage: {@code Main DATA_DIR BOLT_PORT}. Everything Neo4j writes (store, transaction logs, debug.log, temp
 * files) goes under DATA_DIR. Stops cleanly on SIGTERM/SIGINT (shutdown hook), otherwise blocks forever.
 * Started and stopped by scripts/services/neo4j.sh.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Main DATA_DIR BOLT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath().normalize();
        int port = Integer.parseInt(args[1]);
        // Temp files (e.g. Netty's native library) stay in the data dir too, whatever the JVM was given.
        Path tmp = home.resolve("tmp");
        Files.createDirectories(tmp);
        System.setProperty("java.io.tmpdir", tmp.toString());

        long t0 = System.nanoTime();
        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                    .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                    .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                    .setConfig(GraphDatabaseSettings.auth_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(256))
                    // No usage-data reports to Neo4j Inc. from tests or CI.
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    // A test server: keep only the transaction logs recovery needs, and do not preallocate
                    // them (256 MiB per database otherwise, i.e. 512 MiB on disk for an empty DBMS).
                    .setConfig(GraphDatabaseSettings.keep_logical_logs, "false")
                    .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                    // Bolt's shutdown otherwise waits 5 s for connections and 5 s for its thread pool, even idle.
                    .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
                    .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
                    .build();
        } catch (Throwable e) {
            System.err.println("neo4j failed to start: " + e);
            e.printStackTrace();
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j: shutting down");
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
                System.out.println("neo4j: stopped");
            }
        }, "steward-neo4j-shutdown"));

        boolean available = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME).isAvailable(120_000);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        System.out.printf("neo4j: database %s %s after %d ms; bolt://127.0.0.1:%d, data in %s%n",
                GraphDatabaseSettings.DEFAULT_DATABASE_NAME, available ? "available" : "NOT available", ms, port, home);
        System.out.flush();

        // Block until the shutdown hook has run (SIGTERM); the JVM then exits.
        stopped.await();
    }
}
