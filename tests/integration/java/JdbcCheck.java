/*
 * JdbcCheck - connects to PostgreSQL with the PostgreSQL JDBC driver over
 * mutual TLS and prints current_user (used by tests/integration/test_certs_jdbc.sh).
 *
 * Usage: java -cp DIR:/usr/share/java/postgresql.jar JdbcCheck
 *            HOST PORT USER SSLROOTCERT SSLCERT SSLKEY [SSLPASSWORD]
 *
 * sslmode=verify-full: the driver checks the server certificate against
 * SSLROOTCERT and the host name against its subjectAltName. SSLKEY is the
 * client key: a DER PKCS#8 file (.pk8, read by the driver's LazyKeyManager;
 * an unencrypted key needs no password) or a PKCS#12 file (.p12, with
 * SSLCERT ignored and SSLPASSWORD as its password, empty by default).
 * Exit 0 after printing current_user; 1 with the driver's message on stderr.
 */
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class JdbcCheck {
    private JdbcCheck() {
    }

    public static void main(String[] args) {
        if (args.length < 6 || args.length > 7) {
            System.err.println("usage: JdbcCheck HOST PORT USER SSLROOTCERT SSLCERT SSLKEY [SSLPASSWORD]");
            System.exit(2);
        }
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/postgres";
        Properties props = new Properties();
        props.setProperty("user", args[2]);
        props.setProperty("ssl", "true");
        props.setProperty("sslmode", "verify-full");
        props.setProperty("sslrootcert", args[3]);
        props.setProperty("sslcert", args[4]);
        props.setProperty("sslkey", args[5]);
        props.setProperty("sslpassword", args.length == 7 ? args[6] : "");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "20");
        try (Connection conn = DriverManager.getConnection(url, props);
             Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("select current_user")) {
            if (!rs.next()) {
                System.err.println("JdbcCheck: select current_user returned no row");
                System.exit(1);
            }
            System.out.println(rs.getString(1));
        } catch (SQLException e) {
            StringBuilder msg = new StringBuilder("JdbcCheck: " + e.getMessage());
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                msg.append(" | caused by: ").append(c);
            }
            System.err.println(msg.toString().replace('\n', ' '));
            System.exit(1);
        }
    }
}
